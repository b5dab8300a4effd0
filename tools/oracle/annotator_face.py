"""Fixtures for the face_detector annotator's detector stage (src/engine/annotators/neural/face.ts), computed
with numpy from MediaPipe's (google-ai-edge/mediapipe, Apache-2.0) calculators, re-implemented here from their
source and the options the face graphs set:

- SsdAnchorsCalculator (mediapipe/calculators/tflite/ssd_anchors_calculator.cc) with
  mediapipe/modules/face_detection/face_detection_short_range.pbtxt's options: num_layers 4, min_scale
  0.1484375, max_scale 0.75, input 128x128, anchor_offset 0.5, strides [8, 16, 16, 16], aspect_ratios [1.0],
  interpolated_scale_aspect_ratio 1.0 (the proto default), fixed_anchor_size true -> 896 anchors.
- TensorsToDetectionsCalculator (mediapipe/calculators/tensor/tensors_to_detections_calculator.cc) with
  num_coords 16, box_coord_offset 0, keypoint_coord_offset 4, num_keypoints 6, num_values_per_keypoint 2,
  reverse_output_order true, x/y/w/h_scale 128, sigmoid_score true, score_clipping_thresh 100,
  min_score_thresh 0.5 (float32 arithmetic, as the C++).
- NonMaxSuppressionCalculator (mediapipe/calculators/util/non_max_suppression_calculator.cc):
  algorithm WEIGHTED, overlap_type INTERSECTION_OVER_UNION, min_suppression_threshold 0.3.
- DetectionProjectionCalculator for the keep_aspect_ratio letterbox of ImageToTensorCalculator.
- DetectionsToRectsCalculator (rotation_vector_start_keypoint_index 0, end 1, target angle 0) and
  RectTransformationCalculator (scale 1.5, square_long) of
  mediapipe/modules/face_landmark/face_detection_front_detection_to_roi.pbtxt.
- LandmarkProjectionCalculator (mediapipe/calculators/util/landmark_projection_calculator.cc).
- The crops: ImageToTensorCalculator's OpenCV converter (image_to_tensor_converter_opencv.cc):
  cv2.getPerspectiveTransform(cv2.boxPoints(roi), tensor corners) then cv2.warpPerspective INTER_LINEAR with
  BORDER_CONSTANT 0 (the detector, border_mode BORDER_ZERO) or BORDER_REPLICATE (the landmark crop).

Writes tests/fixtures/annotators/face_detect.json + .bin (a few tens of KB).
"""
import math
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import save_fixture  # noqa: E402

cv2.setNumThreads(1)
f32 = np.float32


def calculate_scale(min_scale, max_scale, stride_index, num_strides):
    if num_strides == 1:
        return (min_scale + max_scale) * 0.5
    return min_scale + (max_scale - min_scale) * 1.0 * stride_index / (num_strides - 1.0)


def ssd_anchors(input_w=128, input_h=128, min_scale=0.1484375, max_scale=0.75, offset_x=0.5, offset_y=0.5,
                strides=(8, 16, 16, 16), aspect_ratios=(1.0,), interpolated=1.0, fixed_anchor_size=True):
    """SsdAnchorsCalculator::GenerateAnchors: anchors as rows (x_center, y_center, w, h)."""
    anchors = []
    n = len(strides)
    layer_id = 0
    while layer_id < n:
        heights, widths, ratios, scales = [], [], [], []
        last = layer_id
        while last < n and strides[last] == strides[layer_id]:
            scale = calculate_scale(min_scale, max_scale, last, n)
            for r in aspect_ratios:
                ratios.append(r)
                scales.append(scale)
            if interpolated > 0:
                scale_next = 1.0 if last == n - 1 else calculate_scale(min_scale, max_scale, last + 1, n)
                scales.append(math.sqrt(scale * scale_next))
                ratios.append(interpolated)
            last += 1
        for r, s in zip(ratios, scales):
            heights.append(s / math.sqrt(r))
            widths.append(s * math.sqrt(r))
        stride = strides[layer_id]
        fh, fw = math.ceil(input_h / stride), math.ceil(input_w / stride)
        for y in range(fh):
            for x in range(fw):
                for a in range(len(heights)):
                    xc, yc = (x + offset_x) / fw, (y + offset_y) / fh
                    w, h = (1.0, 1.0) if fixed_anchor_size else (widths[a], heights[a])
                    anchors.append((xc, yc, w, h))
        layer_id = last
    return np.array(anchors, np.float32)


def decode(raw_boxes, raw_scores, anchors, scale=f32(128), min_score=0.5):
    """TensorsToDetectionsCalculator::DecodeBoxes + ConvertToDetections, float32. Rows: score, xmin, ymin,
    width, height, 6 x (x, y); sorted by anchor index (the calculator's order)."""
    out = []
    for i in range(len(anchors)):
        s = np.clip(raw_scores[i], f32(-100), f32(100))
        # 1.0f / (1.0f + std::exp(-score)): expf rounded once from the exact value (glibc's expf is correctly
        # rounded in nearly all cases; numpy's float32 exp may be 1 ulp off)
        score = f32(1) / (f32(1) + f32(np.exp(-np.float64(s))))
        if score < min_score:
            continue
        ax, ay, aw, ah = anchors[i]
        r = raw_boxes[i]
        x_center = r[0] / scale * aw + ax  # reverse_output_order: x, y, w, h
        y_center = r[1] / scale * ah + ay
        w = r[2] / scale * aw
        h = r[3] / scale * ah
        ymin, xmin = y_center - h / f32(2), x_center - w / f32(2)
        ymax, xmax = y_center + h / f32(2), x_center + w / f32(2)
        width, height = xmax - xmin, ymax - ymin
        if width < 0 or height < 0:
            continue
        kps = []
        for k in range(6):
            kps += [r[4 + 2 * k] / scale * aw + ax, r[5 + 2 * k] / scale * ah + ay]
        out.append([score, xmin, ymin, width, height] + kps)
    return np.array(out, np.float32)


def overlap_iou(a, b):
    """OverlapSimilarity(INTERSECTION_OVER_UNION) on Rectangle_f(xmin, ymin, width, height)."""
    ax0, ay0, ax1, ay1 = a[1], a[2], a[1] + a[3], a[2] + a[4]
    bx0, by0, bx1, by1 = b[1], b[2], b[1] + b[3], b[2] + b[4]
    if bx0 > ax1 or bx1 < ax0 or by0 > ay1 or by1 < ay0 or a[3] < 0 or a[4] < 0 or b[3] < 0 or b[4] < 0:
        return 0.0
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    norm = a[3] * a[4] + b[3] * b[4] - inter
    return inter / norm if norm > 0 else 0.0


def weighted_nms(dets, thr=0.3):
    """NonMaxSuppressionCalculator::WeightedNonMaxSuppression (float64 here)."""
    dets = dets.astype(np.float64)
    order = sorted(range(len(dets)), key=lambda i: (-dets[i, 0], i))
    remained = [dets[i] for i in order]
    out = []
    while remained:
        top = remained[0]
        cands = [d for d in remained if overlap_iou(d, top) > thr]
        rest = [d for d in remained if not overlap_iou(d, top) > thr]
        merged = top.copy()
        if cands:
            c = np.array(cands)
            wsum = c[:, 0].sum()
            xmin = (c[:, 1] * c[:, 0]).sum() / wsum
            ymin = (c[:, 2] * c[:, 0]).sum() / wsum
            xmax = ((c[:, 1] + c[:, 3]) * c[:, 0]).sum() / wsum
            ymax = ((c[:, 2] + c[:, 4]) * c[:, 0]).sum() / wsum
            merged[1:5] = [xmin, ymin, xmax - xmin, ymax - ymin]
            merged[5:] = (c[:, 5:] * c[:, :1]).sum(0) / wsum
        out.append(merged)
        if len(rest) == len(remained):
            break
        remained = rest
    return np.array(out)


def letterbox_roi(W, H):
    side = max(W, H)
    return (W / 2, H / 2, side, side, 0.0)


def project_detections(dets, roi, W, H):
    """DetectionProjectionCalculator with the letterbox's matrix (no rotation): box corners and keypoints."""
    cx, cy, w, h, _ = roi
    px = lambda u: (cx + (u - 0.5) * w) / W  # noqa: E731
    py = lambda v: (cy + (v - 0.5) * h) / H  # noqa: E731
    out = dets.copy()
    for d, o in zip(dets, out):
        xmin, ymin = px(d[1]), py(d[2])
        o[1:5] = [xmin, ymin, px(d[1] + d[3]) - xmin, py(d[2] + d[4]) - ymin]
        o[5::2] = px(d[5::2])
        o[6::2] = py(d[6::2])
    return out


def normalize_radians(a):
    return a - 2 * math.pi * math.floor((a - (-math.pi)) / (2 * math.pi))


def face_roi(d, W, H):
    """DetectionsToRectsCalculator (NORM_RECT, rotation from keypoints 0 -> 1, target 0) then
    RectTransformationCalculator (square_long, scale_x = scale_y = 1.5, no shift). Row: cx, cy, w, h, rotation."""
    x0, y0 = d[5] * W, d[6] * H
    x1, y1 = d[7] * W, d[8] * H
    rotation = normalize_radians(0 - math.atan2(-(y1 - y0), x1 - x0))
    long_side = max(d[3] * W, d[4] * H)
    return [d[1] + d[3] / 2, d[2] + d[4] / 2, long_side / W * 1.5, long_side / H * 1.5, rotation]


def project_landmarks(lm, roi):
    """LandmarkProjectionCalculator: landmarks normalized to the crop -> normalized to the image."""
    cx, cy, w, h, r = roi
    x, y = lm[:, 0] - 0.5, lm[:, 1] - 0.5
    return np.stack([(math.cos(r) * x - math.sin(r) * y) * w + cx, (math.sin(r) * x + math.cos(r) * y) * h + cy], 1)


def crop(img, roi, size, border):
    """ImageToTensorCalculator's OpenCV converter: the ROI's corners onto the tensor's, warpPerspective."""
    cx, cy, w, h, r = roi
    src = cv2.boxPoints(((cx, cy), (w, h), r * 180.0 / math.pi)).astype(np.float32)
    dst = np.array([[0, size], [0, 0], [size, 0], [size, size]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    mode = cv2.BORDER_CONSTANT if border == 'zero' else cv2.BORDER_REPLICATE
    return cv2.warpPerspective(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=mode, borderValue=(0, 0, 0))


def raw_outputs(anchors, rng):
    """Detector outputs: background logits, two faces as clusters of overlapping anchors (one tilted), a box
    under the score threshold, and a logit past the clipping threshold."""
    n = len(anchors)
    boxes = rng.normal(0, 3, (n, 16)).astype(np.float32)
    scores = rng.uniform(-12, -3, n).astype(np.float32)

    def put(i, cx, cy, size, eyes_dy, logit, jitter):
        ax, ay = anchors[i, 0], anchors[i, 1]
        j = rng.normal(0, jitter, 16)
        r = np.zeros(16)
        r[0], r[1], r[2], r[3] = (cx - ax) * 128, (cy - ay) * 128, size * 128, size * 0.95 * 128
        # keypoints: eyes (0 on the image's left), nose, mouth, ear tragions
        kps = [(-0.2, -0.15 - eyes_dy), (0.2, -0.15 + eyes_dy), (0, 0.02), (0, 0.2), (-0.45, -0.05), (0.45, -0.05)]
        for k, (dx, dy) in enumerate(kps):
            r[4 + 2 * k] = (cx + dx * size - ax) * 128
            r[5 + 2 * k] = (cy + dy * size - ay) * 128
        boxes[i] = (r + j).astype(np.float32)
        scores[i] = logit

    idx16 = lambda x, y, a: (y * 16 + x) * 2 + a  # noqa: E731
    idx8 = lambda x, y, a: 512 + (y * 8 + x) * 6 + a  # noqa: E731
    # face A: centre (0.34, 0.38), size 0.3, upright; five anchors
    for k, (i, logit) in enumerate([(idx16(5, 6, 0), 2.5), (idx16(5, 6, 1), 1.9), (idx16(6, 6, 0), 1.2), (idx8(2, 3, 0), 3.1), (idx8(2, 3, 4), 0.7)]):
        put(i, 0.34 + 0.004 * k, 0.38 - 0.003 * k, 0.3 + 0.01 * k, 0.0, logit, 0.3)
    # face B: centre (0.7, 0.62), size 0.22, tilted (right eye lower); three anchors, one logit clipped at 100
    for k, (i, logit) in enumerate([(idx16(11, 9, 0), 150.0), (idx16(11, 10, 1), 1.5), (idx8(5, 4, 2), 0.4)]):
        put(i, 0.7 - 0.005 * k, 0.62 + 0.004 * k, 0.22 - 0.008 * k, 0.06, logit, 0.3)
    # a weak detection (sigmoid(-0.2) < 0.5): dropped
    put(idx16(2, 13, 0), 0.15, 0.85, 0.12, 0.0, -0.2, 0.1)
    # a lone small face far from the others, score sigmoid(0.1)
    put(idx16(14, 2, 1), 0.88, 0.15, 0.1, -0.03, 0.1, 0.1)
    return boxes, scores


def main():
    rng = np.random.default_rng(2024)
    anchors = ssd_anchors()
    assert anchors.shape == (896, 4)
    boxes, scores = raw_outputs(anchors, rng)
    decoded = decode(boxes, scores, anchors)
    nms = weighted_nms(decoded)
    W, H = 160, 120
    projected = project_detections(nms, letterbox_roi(W, H), W, H)
    rois = np.array([face_roi(d, W, H) for d in projected])
    lm = rng.uniform(0.1, 0.9, (len(rois), 24, 2))
    lm_img = np.stack([project_landmarks(lm[i], rois[i]) for i in range(len(rois))])
    # crops of a small image: the detector letterbox (zero border) and a rotated face crop (replicate)
    yy, xx = np.mgrid[0:30, 0:40]
    img = np.stack([xx * 6, yy * 8, (xx * yy) % 256], axis=2).astype(np.float32)
    img = np.clip(cv2.GaussianBlur(img + rng.normal(0, 20, img.shape), (0, 0), 0.8), 0, 255).astype(np.uint8)
    lb_roi = letterbox_roi(40, 30)
    face_crop_roi = (17.3, 13.6, 26.0, 26.0, 0.4)
    save_fixture('annotators/face_detect', {
        'anchors': anchors,
        'raw_boxes': boxes, 'raw_scores': scores,
        'decoded': decoded, 'nms': nms.astype(np.float32), 'projected': projected.astype(np.float32),
        'rois': rois.astype(np.float32), 'crop_landmarks': lm.astype(np.float32), 'image_landmarks': lm_img.astype(np.float32),
        'img': img, 'letterbox': crop(img, lb_roi, 32, 'zero'), 'face_crop': crop(img, face_crop_roi, 24, 'replicate'),
    }, {'W': W, 'H': H, 'face_crop_roi': list(face_crop_roi)})
    print('decoded', len(decoded), 'after nms', len(nms))
    print(np.round(projected[:, :5], 4))
    print(np.round(rois, 4))


if __name__ == '__main__':
    main()
