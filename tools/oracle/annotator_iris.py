"""Fixtures for the face_detector annotator's iris stage (src/engine/annotators/neural/iris.ts): MediaPipe's iris
pipeline (google-ai-edge/mediapipe, Apache-2.0) re-implemented with numpy / OpenCV from its graphs and calculators,
and the iris model itself run by Google's LiteRT interpreter (ai-edge-litert):

- mediapipe/modules/iris_landmark/iris_landmark_landmarks_to_roi.pbtxt: LandmarksToDetectionCalculator (bounding
  box of the two eye corners, the corners as keypoints), DetectionsToRectsCalculator (rotation_vector from
  keypoint 0 to 1, target angle 0), RectTransformationCalculator (scale_x = scale_y = 2.3, square_long).
- mediapipe/modules/iris_landmark/iris_landmark_cpu.pbtxt:
  ImageCroppingCalculator (image_cropping_calculator.cc RenderCpu, BORDER_REPLICATE): centre and size rounded to
  pixels, cv2.boxPoints of the rotated rect onto (0, h-1), (0, 0), (w-1, 0), (w-1, h-1), warpPerspective flags 0
  (which is cv2.INTER_NEAREST);
  ImageTransformationCalculator (image_transformation_calculator.cc RenderCpu, 64x64, FIT): cv2.resize with
  INTER_AREA when scale < 1 else INTER_LINEAR, copyMakeBorder BORDER_CONSTANT (constant_padding defaults to true),
  cv2.flip(1) when FLIP_HORIZONTALLY (the right eye); TfLiteConverterCalculator zero_center false (x / 255);
  TfLiteTensorsToLandmarksCalculator (5 points, 64x64; x -> 64 - x when flipped); LandmarkLetterboxRemoval;
  LandmarkProjectionCalculator.
- iris_landmark_left_and_right_cpu.pbtxt: left eye = face landmarks 33 / 133 (not flipped), right eye = 362 / 263
  (flipped).

Cases: the astronaut photo (tests/fixtures/photos/astronaut-256.png) with the eye corners MediaPipe's own
FaceMesh (mediapipe 0.10.14, refine_landmarks=False) finds there, which is an upscaled crop (INTER_LINEAR), and the
same photo resized to 1024 x 1024 (cv2.INTER_CUBIC; a 240 x 170 window around the eyes is the image) with the
corners tilted by 0.35 rad about the face, which shrinks (INTER_AREA) and rotates. The model runs on each case's exact 64x64 input with the builtin kernels; the
XNNPACK and reference kernels' largest difference from it is stored as `spread`.
Writes tests/fixtures/annotators/iris.{json,bin}.
"""
import math
import os
import sys

import cv2
import numpy as np
from ai_edge_litert import interpreter as litert

sys.path.insert(0, os.path.dirname(__file__))
from common import ROOT, save_fixture  # noqa: E402

cv2.setNumThreads(1)
f32 = np.float32
SIZE = 64
MODEL = os.path.join(ROOT, 'assets', 'mediapipe', 'iris_landmark.tflite')
# MediaPipe FaceMesh (static image, refine_landmarks=False) on astronaut-256.png, pixels: 33, 133, 362, 263
ASTRONAUT_CORNERS = {33: (97.259, 50.074), 133: (106.772, 51.401), 362: (118.448, 51.970), 263: (127.949, 51.645)}


def normalize_radians(a):
    return a - 2 * math.pi * math.floor((a - (-math.pi)) / (2 * math.pi))


def eye_roi(p0, p1, W, H):
    """Normalized corners -> NormalizedRect (cx, cy, w, h, rotation)."""
    xmin, xmax = min(p0[0], p1[0]), max(p0[0], p1[0])
    ymin, ymax = min(p0[1], p1[1]), max(p0[1], p1[1])
    w, h = xmax - xmin, ymax - ymin
    rotation = normalize_radians(0 - math.atan2(-(p1[1] - p0[1]) * H, (p1[0] - p0[0]) * W))
    long_side = max(w * W, h * H)
    return [xmin + w / 2, ymin + h / 2, long_side / W * 2.3, long_side / H * 2.3, rotation]


def std_round(v):
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def crop(img, roi):
    H, W = img.shape[:2]
    cx, cy, w, h, r = roi
    x, y, cw, ch = std_round(cx * W), std_round(cy * H), std_round(w * W), std_round(h * H)
    src = cv2.boxPoints(((x, y), (cw, ch), f32(r * 180.0 / math.pi))).astype(np.float32)
    dst = np.array([[0, ch - 1], [0, 0], [cw - 1, 0], [cw - 1, ch - 1]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(img, m, (cw, ch), flags=0, borderMode=cv2.BORDER_REPLICATE)


def transform(c, flip):
    ih, iw = c.shape[:2]
    scale = min(f32(SIZE) / f32(iw), f32(SIZE) / f32(ih))
    tw, th = std_round(iw * scale), std_round(ih * scale)
    r = cv2.resize(c, (tw, th), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (SIZE - th) // 2, (SIZE - tw) // 2
    out = cv2.copyMakeBorder(r, top, SIZE - th - top, left, SIZE - tw - left, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    in_aspect = f32(iw) / f32(ih)
    pad = [0.0, 0.0, 0.0, 0.0]
    if in_aspect < 1:
        pad[0] = pad[2] = float((1 - in_aspect) / 2)
    elif in_aspect > 1:
        pad[1] = pad[3] = float((1 - 1 / in_aspect) / 2)
    return (cv2.flip(out, 1) if flip else out), pad


def decode(raw, flip, pad, roi):
    pts = raw.reshape(5, 3).astype(np.float64)
    x = ((SIZE - pts[:, 0]) if flip else pts[:, 0]) / SIZE
    y = pts[:, 1] / SIZE
    x = (x - pad[0]) / (1 - pad[0] - pad[2])
    y = (y - pad[1]) / (1 - pad[1] - pad[3])
    cx, cy, w, h, r = roi
    x, y = x - 0.5, y - 0.5
    return np.stack([(math.cos(r) * x - math.sin(r) * y) * w + cx, (math.sin(r) * x + math.cos(r) * y) * h + cy], 1)


def interpreters():
    kinds = (litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, litert.OpResolverType.AUTO, litert.OpResolverType.BUILTIN_REF)
    its = [litert.Interpreter(model_path=MODEL, num_threads=1, experimental_op_resolver_type=k) for k in kinds]
    for it in its:
        it.allocate_tensors()
    return its


def run(its, x):
    outs = []
    for it in its:
        it.set_tensor(it.get_input_details()[0]['index'], x)
        it.invoke()
        d = {o['name']: it.get_tensor(o['index']).reshape(-1).astype(np.float32).copy() for o in it.get_output_details()}
        outs.append(d['output_iris'])
    spread = max(float(np.abs(outs[a] - outs[b]).max()) for a, b in ((0, 1), (0, 2), (1, 2)))
    return outs[0], spread


def main():
    its = interpreters()
    photo = cv2.cvtColor(cv2.imread(os.path.join(ROOT, 'tests/fixtures/photos/astronaut-256.png')), cv2.COLOR_BGR2RGB)
    big = cv2.resize(photo, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    # the tilted case: the corners turned by 0.35 rad about the point between the eyes
    centre = np.array([112.6, 51.0])
    t = 0.35
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    # a 240 x 170 window of the 1024 x 1024 image around the eyes keeps the fixture small (and W != H)
    x0, y0 = 330, 120
    window = np.ascontiguousarray(big[y0:y0 + 170, x0:x0 + 240])
    tilted = {k: tuple((rot @ (np.array(v) - centre) + centre) * 4 - [x0, y0]) for k, v in ASTRONAUT_CORNERS.items()}
    cases = [('astronaut', photo, {k: (x, y) for k, (x, y) in ASTRONAUT_CORNERS.items()}),
             ('tilted', window, tilted)]
    tensors, meta = {}, {'cases': []}
    for name, img, corners in cases:
        H, W = img.shape[:2]
        if name != 'astronaut':  # the TS test reads the committed photo itself
            tensors[f'{name}/image'] = img
        norm = np.array([[corners[i][0] / W, corners[i][1] / H] for i in (33, 133, 362, 263)], np.float64)
        tensors[f'{name}/corners'] = norm.astype(np.float32)
        for eye, (a, b), flip in (('left', (0, 1), False), ('right', (2, 3), True)):
            # the ROI from the float32 corners the TS test reads
            p = norm.astype(np.float32).astype(np.float64)
            roi = eye_roi(p[a], p[b], W, H)
            c = crop(img, roi)
            x, pad = transform(c, flip)
            raw, spread = run(its, (x.astype(np.float32) / f32(255))[None])
            key = f'{name}/{eye}'
            tensors[f'{key}/roi'] = np.array(roi, np.float32)
            tensors[f'{key}/crop'] = c
            tensors[f'{key}/input'] = x
            tensors[f'{key}/pad'] = np.array(pad, np.float32)
            tensors[f'{key}/iris_raw'] = raw
            tensors[f'{key}/spread'] = np.array([spread], np.float32)
            tensors[f'{key}/iris'] = decode(raw, flip, pad, roi).astype(np.float32)
            print(key, 'crop', c.shape, 'pad', pad, 'spread', spread, 'pupil px', (decode(raw, flip, pad, roi)[0] * [W, H]).round(3))
        meta['cases'].append(name)
    save_fixture('annotators/iris', tensors, meta)


if __name__ == '__main__':
    main()
