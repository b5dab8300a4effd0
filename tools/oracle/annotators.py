"""Fixtures for the auto_hint annotators (src/engine/annotators/), measured with OpenCV and with the
post-processing code of controlnet_aux 0.0.10 (the ControlNet 1.1 annotators), re-implemented here where the
package cannot be imported without its model stack; each such function cites the file it follows.

Writes tests/fixtures/annotators/*.json + .bin (a few hundred KB in all).
"""
import math
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import save_fixture  # noqa: E402

cv2.setNumThreads(1)


def test_images():
    """Small synthetic RGB images: shapes, gradients, noise, at sizes that are not multiples of 8."""
    rng = np.random.default_rng(1234)
    out = {}
    # shapes on a gradient, with mild noise
    h, w = 64, 64
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 4, yy * 4, (xx + yy) * 2], axis=2).astype(np.float32)
    cv2.circle(img, (20, 24), 12, (250, 30, 40), -1)
    cv2.rectangle(img, (36, 8), (58, 30), (20, 200, 90), -1)
    cv2.line(img, (4, 60), (60, 38), (255, 255, 255), 2)
    img += rng.normal(0, 6, img.shape)
    out['shapes64'] = np.clip(img, 0, 255).astype(np.uint8)
    # pure noise, blurred a little so that edges have structure
    h, w = 96, 128
    noise = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
    out['noise128x96'] = np.clip(cv2.GaussianBlur(noise, (0, 0), 1.2) * 1.6 - 80, 0, 255).astype(np.uint8)
    # smooth gradients with a soft ellipse and a text-like pattern
    h, w = 80, 72
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 100 * np.sin(xx / 7.0), 128 + 100 * np.cos(yy / 5.0), (xx * yy) % 256], axis=2).astype(np.float32)
    cv2.ellipse(img, (36, 40), (20, 12), 30, 0, 360, (10, 10, 10), -1)
    img = np.clip(img, 0, 255).astype(np.uint8)
    cv2.putText(img, 'Ab', (8, 74), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (240, 240, 0), 1)
    out['waves72x80'] = img
    return out


def canny_fixtures(images):
    """cv2.Canny(img, 100, 200) on the RGB image as controlnet_aux/canny/__init__.py calls it (L2gradient false,
    aperture 3), and on its gray version; plus a second threshold pair."""
    tensors = {}
    for name, img in images.items():
        tensors[f'{name}/image'] = img
        tensors[f'{name}/canny'] = cv2.Canny(img, 100, 200)
        tensors[f'{name}/canny_50_120'] = cv2.Canny(img, 50, 120)
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        tensors[f'{name}/gray'] = gray
        tensors[f'{name}/gray_canny'] = cv2.Canny(gray, 100, 200)
    save_fixture('annotators/canny', tensors, {'names': list(images), 'opencv': cv2.__version__})


def shuffle_fixtures(images):
    """controlnet_aux/shuffle ContentShuffleDetector with its numpy noise grids saved (util.make_noise_disk):
    cv2.resize INTER_CUBIC of the grid, crop, min-max, flow = disk * (size - 1), cv2.remap INTER_LINEAR."""
    rng = np.random.default_rng(7)
    tensors = {}
    for name, img in images.items():
        H, W, _ = img.shape
        f = 16

        def disk(grid):
            noise = cv2.resize(grid, (W + 2 * f, H + 2 * f), interpolation=cv2.INTER_CUBIC)
            noise = noise[f: f + H, f: f + W]
            noise -= np.min(noise)
            noise /= np.max(noise)
            return noise[:, :, None]

        # fixtures store float32: use float32-exact grids so the TypeScript side starts from the same numbers
        gx = rng.uniform(0, 1, size=((H // f) + 2, (W // f) + 2, 1)).astype(np.float32).astype(np.float64)
        gy = rng.uniform(0, 1, size=((H // f) + 2, (W // f) + 2, 1)).astype(np.float32).astype(np.float64)
        x = disk(gx) * float(W - 1)
        y = disk(gy) * float(H - 1)
        flow = np.concatenate([x, y], axis=2).astype(np.float32)
        tensors[f'{name}/grid_x'] = gx[:, :, 0].astype(np.float32)
        tensors[f'{name}/grid_y'] = gy[:, :, 0].astype(np.float32)
        tensors[f'{name}/disk_x'] = disk(gx)[:, :, 0].astype(np.float32)  # rounded: compared within 1e-7
        tensors[f'{name}/shuffled'] = cv2.remap(img, flow, None, cv2.INTER_LINEAR)
    save_fixture('annotators/shuffle', tensors, {'names': list(images), 'f': 16})


def qrcode_fixtures(images):
    """Gray (cv2.COLOR_RGB2GRAY) binarized with Otsu's threshold (cv2.THRESH_BINARY | cv2.THRESH_OTSU)."""
    tensors = {}
    for name, img in images.items():
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        t, binary = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        tensors[f'{name}/gray'] = gray
        tensors[f'{name}/otsu'] = np.array([t], dtype=np.float32)
        tensors[f'{name}/binary'] = binary
    save_fixture('annotators/qrcode', tensors, {'names': list(images)})


def inpaint_fixtures(images):
    """make_inpaint_condition of the diffusers docs for control_v11p_sd15_inpaint (PIL convert('L'), > 0.5 -> -1)."""
    from PIL import Image
    rng = np.random.default_rng(3)
    tensors = {}
    for name, img in images.items():
        H, W, _ = img.shape
        mask = np.zeros((H, W, 3), dtype=np.uint8)
        cv2.circle(mask, (W // 2, H // 2), min(W, H) // 4, (255, 255, 255), -1)
        mask[rng.uniform(size=(H, W)) < 0.05] = (130, 120, 126)  # gray pixels near the 0.5 threshold
        mask[rng.uniform(size=(H, W)) < 0.05] = (128, 128, 127)
        image = np.array(Image.fromarray(img).convert('RGB')).astype(np.float32) / 255.0
        image_mask = np.array(Image.fromarray(mask).convert('L')).astype(np.float32) / 255.0
        image[image_mask > 0.5] = -1.0
        tensors[f'{name}/mask'] = mask
        tensors[f'{name}/condition'] = np.ascontiguousarray(image.transpose(2, 0, 1))
    save_fixture('annotators/inpaint', tensors, {'names': list(images)})


def aux_nms(x, t, s):
    """controlnet_aux/util.py nms (the scribble thinning)."""
    x = cv2.GaussianBlur(x.astype(np.float32), (0, 0), s)
    f1 = np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]], dtype=np.uint8)
    f2 = np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]], dtype=np.uint8)
    f3 = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.uint8)
    f4 = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=np.uint8)
    y = np.zeros_like(x)
    for f in [f1, f2, f3, f4]:
        np.putmask(y, cv2.dilate(x, kernel=f) == x, x)
    z = np.zeros_like(y, dtype=np.uint8)
    z[y > t] = 255
    return z


def scribble_fixtures(images):
    """controlnet_aux hed/__init__.py with scribble=True on a soft edge map; and our canny fallback, which
    thickens cv2.Canny edges with the same GaussianBlur(3) and > 4 steps."""
    tensors = {}
    for name, img in images.items():
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        # a soft edge map like HED's: gradient magnitude, blurred, scaled into 0..255
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0)
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1)
        soft = np.clip(cv2.GaussianBlur(np.sqrt(gx * gx + gy * gy), (0, 0), 1.5) * 2.5, 0, 255).astype(np.uint8)
        thin = aux_nms(soft, 127, 3.0)
        m = cv2.GaussianBlur(thin, (0, 0), 3.0)
        m[m > 4] = 255
        m[m < 255] = 0
        tensors[f'{name}/soft'] = soft
        tensors[f'{name}/thin'] = thin
        tensors[f'{name}/scribble'] = m
        c = cv2.GaussianBlur(cv2.Canny(img, 100, 200), (0, 0), 3.0)
        c[c > 4] = 255
        c[c < 255] = 0
        tensors[f'{name}/canny_scribble'] = c
    save_fixture('annotators/scribble', tensors, {'names': list(images)})


def draw_fixtures(images):
    """OpenCV raster primitives the annotators draw with: cv2.line (1 and 2 px), cv2.circle filled,
    cv2.ellipse2Poly + cv2.fillConvexPoly. Random shapes on a 97x83 canvas, end points partly outside."""
    rng = np.random.default_rng(11)
    H, W = 83, 97
    tensors = {}
    specs = []
    canvas = {k: np.zeros((H, W, 3), np.uint8) for k in ['line1', 'line2', 'circle', 'ellipse']}
    polys = []
    for i in range(40):
        p = rng.integers(-10, [W + 10, H + 10, W + 10, H + 10], size=4)
        c = tuple(int(v) for v in rng.integers(30, 256, size=3))
        cv2.line(canvas['line1'], (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), c, 1)
        cv2.line(canvas['line2'], (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), c, 2)
        r = int(rng.integers(1, 8))
        cv2.circle(canvas['circle'], (int(p[0]), int(p[1])), r, c, thickness=-1)
        ax = int(rng.integers(0, 30))
        ang = int(rng.integers(-180, 360))
        poly = cv2.ellipse2Poly((int(p[0]), int(p[1])), (ax, 4), ang, 0, 360, 1)
        polys.append(len(poly))
        cv2.fillConvexPoly(canvas['ellipse'], poly, c)
        specs.append([int(p[0]), int(p[1]), int(p[2]), int(p[3]), c[0], c[1], c[2], r, ax, ang])
        if i == 0:
            tensors['poly0'] = poly.astype(np.int32)
    tensors['specs'] = np.array(specs, dtype=np.int32)
    for k, v in canvas.items():
        tensors[k] = v
    save_fixture('annotators/draw', tensors, {'W': W, 'H': H})


LIMB_SEQ = [[2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10], [10, 11], [2, 12], [12, 13],
            [13, 14], [2, 1], [1, 15], [15, 17], [1, 16], [16, 18], [3, 17], [6, 18]]
BODY_COLORS = [[255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0], [0, 255, 0],
               [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255], [0, 0, 255], [85, 0, 255],
               [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85]]
HAND_EDGES = [[0, 1], [1, 2], [2, 3], [3, 4], [0, 5], [5, 6], [6, 7], [7, 8], [0, 9], [9, 10], [10, 11], [11, 12],
              [0, 13], [13, 14], [14, 15], [15, 16], [0, 17], [17, 18], [18, 19], [19, 20]]
EPS = 0.01


def dw_draw_pose(candidate, subset, hands, faces, H, W):
    """lllyasviel/ControlNet-v1-1-nightly annotator/dwpose/util.py draw_bodypose / draw_handpose /
    draw_facepose (also controlnet_aux/dwpose/util.py), re-implemented from that source: it imports
    matplotlib only for hsv_to_rgb, which colorsys reproduces with the same float steps."""
    import colorsys
    canvas = np.zeros((H, W, 3), dtype=np.uint8)
    for i in range(17):
        for n in range(len(subset)):
            index = subset[n][np.array(LIMB_SEQ[i]) - 1]
            if -1 in index:
                continue
            Y = candidate[index.astype(int), 0] * float(W)
            X = candidate[index.astype(int), 1] * float(H)
            mX, mY = np.mean(X), np.mean(Y)
            length = ((X[0] - X[1]) ** 2 + (Y[0] - Y[1]) ** 2) ** 0.5
            angle = math.degrees(math.atan2(X[0] - X[1], Y[0] - Y[1]))
            polygon = cv2.ellipse2Poly((int(mY), int(mX)), (int(length / 2), 4), int(angle), 0, 360, 1)
            cv2.fillConvexPoly(canvas, polygon, BODY_COLORS[i])
    canvas = (canvas * 0.6).astype(np.uint8)
    for i in range(18):
        for n in range(len(subset)):
            index = int(subset[n][i])
            if index == -1:
                continue
            x, y = candidate[index][0:2]
            cv2.circle(canvas, (int(x * W), int(y * H)), 4, BODY_COLORS[i], thickness=-1)
    for peaks in hands:
        for ie, e in enumerate(HAND_EDGES):
            x1, y1 = peaks[e[0]]
            x2, y2 = peaks[e[1]]
            x1, y1, x2, y2 = int(x1 * W), int(y1 * H), int(x2 * W), int(y2 * H)
            if x1 > EPS and y1 > EPS and x2 > EPS and y2 > EPS:
                cv2.line(canvas, (x1, y1), (x2, y2), np.array(colorsys.hsv_to_rgb(ie / float(len(HAND_EDGES)), 1.0, 1.0)) * 255, thickness=2)
        for x, y in peaks:
            x, y = int(x * W), int(y * H)
            if x > EPS and y > EPS:
                cv2.circle(canvas, (x, y), 4, (0, 0, 255), thickness=-1)
    for lmks in faces:
        for x, y in lmks:
            x, y = int(x * W), int(y * H)
            if x > EPS and y > EPS:
                cv2.circle(canvas, (x, y), 3, (255, 255, 255), thickness=-1)
    return canvas


def wholebody_to_openpose(keypoints, scores):
    """annotator/dwpose/wholebody.py Wholebody.__call__ after inference: neck, mmpose -> openpose order."""
    keypoints_info = np.concatenate((keypoints, scores[..., None]), axis=-1)
    neck = np.mean(keypoints_info[:, [5, 6]], axis=1)
    neck[:, 2:4] = np.logical_and(keypoints_info[:, 5, 2:4] > 0.3, keypoints_info[:, 6, 2:4] > 0.3).astype(int)
    new_keypoints_info = np.insert(keypoints_info, 17, neck, axis=1)
    mmpose_idx = [17, 6, 8, 10, 7, 9, 12, 14, 16, 13, 15, 2, 1, 4, 3]
    openpose_idx = [1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17]
    new_keypoints_info[:, openpose_idx] = new_keypoints_info[:, mmpose_idx]
    return new_keypoints_info[..., :2], new_keypoints_info[..., 2]


def pose_fixtures(images):
    """Two people's 133 whole-body keypoints (pixels) and scores -> DWposeDetector.__call__ (nightly
    annotator/dwpose/__init__.py) -> draw_pose."""
    rng = np.random.default_rng(21)
    H, W = 96, 80
    N = 2
    kp = np.zeros((N, 133, 2), np.float32)
    for n in range(N):
        cx, cy = (22 + 36 * n, 48)
        kp[n, :, 0] = cx + rng.normal(0, 12, 133)
        kp[n, :, 1] = cy + rng.normal(0, 22, 133)
        kp[n, 92:134, 0] = cx + rng.normal(0, 6, 41)  # hands near the body
    sc = rng.uniform(0, 1, (N, 133)).astype(np.float32)
    sc[:, :17] = np.maximum(sc[:, :17], 0.2)
    candidate, subset = wholebody_to_openpose(kp.copy(), sc.copy())
    nums, keys, locs = candidate.shape
    candidate[..., 0] /= float(W)
    candidate[..., 1] /= float(H)
    body = candidate[:, :18].copy().reshape(nums * 18, locs)
    score = subset[:, :18].copy()
    for i in range(len(score)):
        for j in range(len(score[i])):
            score[i][j] = int(18 * i + j) if score[i][j] > 0.3 else -1
    un_visible = subset < 0.3
    candidate[un_visible] = -1
    faces = candidate[:, 24:92]
    hands = np.vstack([candidate[:, 92:113], candidate[:, 113:]])
    canvas = dw_draw_pose(body, score, hands, faces, H, W)
    save_fixture('annotators/pose', {'keypoints': kp, 'scores': sc, 'canvas': canvas}, {'W': W, 'H': H})


def face_mesh_connections():
    """The contour index pairs of mediapipe's face mesh, read from our TypeScript copy (face-mesh.ts) so the
    oracle draws the same edges; the drawing rules below are what the test checks."""
    import re
    src = open(os.path.join(os.path.dirname(__file__), '..', '..', 'src', 'engine', 'annotators', 'face-mesh.ts')).read()
    parts = {}
    for m in re.finditer(r'export const (\w+): readonly \[number, number\]\[\] = \[(.*?)\];', src, re.S):
        parts[m.group(1)] = [(int(a), int(b)) for a, b in re.findall(r'\[(\d+), (\d+)\]', m.group(2))]
    return parts


def face_fixtures(images):
    """controlnet_aux mediapipe_face/mediapipe_face_common.py generate_annotation's drawing, re-implemented
    (mediapipe itself is not needed to draw): drawing_utils.draw_landmarks with the per-part DrawingSpec
    colors (BGR, thickness 2) via cv2.line, then draw_pupils, then the BGR -> RGB flip."""
    rng = np.random.default_rng(31)
    parts = face_mesh_connections()
    specs = [('FACE_OVAL', (10, 200, 10)), ('LEFT_EYE', (180, 200, 10)), ('LEFT_EYEBROW', (180, 220, 10)),
             ('RIGHT_EYE', (10, 200, 180)), ('RIGHT_EYEBROW', (10, 220, 180)), ('LIPS', (10, 180, 10))]
    H, W = 120, 104
    # 478 landmarks: a face-sized cloud, with a few points outside the image (not drawn)
    lm = np.stack([rng.uniform(0.08, 0.92, 478), rng.uniform(0.05, 0.95, 478)], axis=1).astype(np.float32)
    lm[[17, 300]] = [[1.2, 0.5], [0.4, -0.1]]
    lm[468] = [0.35, 0.4]
    lm[473] = [0.65, 0.41]

    def to_px(x, y):
        if not ((x > 0 or math.isclose(0, x)) and (x < 1 or math.isclose(1, x)) and (y > 0 or math.isclose(0, y)) and (y < 1 or math.isclose(1, y))):
            return None
        return min(math.floor(x * W), W - 1), min(math.floor(y * H), H - 1)

    empty = np.zeros((H, W, 3), np.uint8)
    px = {i: to_px(float(x), float(y)) for i, (x, y) in enumerate(lm)}
    for name, color in specs:
        for a, b in parts[name]:
            if px[a] and px[b]:
                cv2.line(empty, px[a], px[b], color, 2)
    for idx, color in [(468, (10, 200, 250)), (473, (250, 200, 10))]:
        x, y = lm[idx]
        ix, iy = int(W * x), int(H * y)
        empty[iy - 2:iy + 2, ix - 2:ix + 2, :] = color
    save_fixture('annotators/face', {'landmarks': lm, 'canvas': empty[:, :, ::-1].copy()}, {'W': W, 'H': H})


def mlsd_fixtures(images):
    """controlnet_aux mlsd/utils.py deccode_output_score_and_ptss + pred_lines (torch for the max-pool and
    top-k) and MLSDdetector's drawing (cv2.line, 1 px, int() end points) on a random tpMap."""
    import torch
    import torch.nn.functional as F
    rng = np.random.default_rng(41)
    h, w = 40, 48
    tp = rng.normal(-4, 1, (1, 9, h, w)).astype(np.float32)
    for _ in range(30):  # line centres with displacements
        y, x = rng.integers(2, h - 2), rng.integers(2, w - 2)
        tp[0, 0, y, x] = rng.uniform(-3, 3)
        tp[0, 1:5, y, x] = rng.uniform(-20, 20, 4)
    tpm = torch.from_numpy(tp)
    displacement = tpm[:, 1:5, :, :][0]
    center = tpm[:, 0, :, :]
    heat = torch.sigmoid(center)
    hmax = F.max_pool2d(heat, (3, 3), stride=1, padding=1)
    keep = (hmax == heat).float()
    heat = (heat * keep).reshape(-1)
    scores, indices = torch.topk(heat, 200, dim=-1, largest=True)
    yy = torch.floor_divide(indices, w).unsqueeze(-1)
    xx = torch.fmod(indices, w).unsqueeze(-1)
    pts = torch.cat((yy, xx), dim=-1).numpy()
    pts_score = scores.numpy()
    vmap = displacement.numpy().transpose((1, 2, 0))
    start, end = vmap[:, :, :2], vmap[:, :, 2:]
    dist_map = np.sqrt(np.sum((start - end) ** 2, axis=-1))
    segments = []
    for (y, x), score in zip(pts, pts_score):
        if score > 0.1 and dist_map[y, x] > 0.1:
            d = vmap[y, x, :]
            segments.append([x + d[0], y + d[1], x + d[2], y + d[3]])
    lines = 2 * np.array(segments)
    out = np.zeros((2 * h, 2 * w, 3), np.uint8)
    for line in lines:
        x0, y0, x1, y1 = [int(v) for v in line]
        cv2.line(out, (x0, y0), (x1, y1), [255, 255, 255], 1)
    save_fixture('annotators/mlsd', {'tpmap': tp, 'lines': lines.astype(np.float32), 'drawn': out[:, :, 0].copy()}, {})


def dense_fixtures(images):
    """Post-processing of the dense annotators on random network outputs, as controlnet_aux 0.0.10 does it:
    midas (min-max -> uint8 -> cv2.resize INTER_LINEAR), normalbae ((n+1)/2 clip -> uint8), hed (side maps
    cv2.resize'd to the input, mean, sigmoid), pidi/lineart (x*255 clip -> uint8, lineart inverted), and
    segmentation (torch bilinear upsampling of logits, argmax, ADE20k palette as util.ade_palette)."""
    import torch
    rng = np.random.default_rng(51)
    t = {}
    # depth: output [1, 29, 37] -> 64 x 48
    depth = rng.normal(3, 1, (29, 37)).astype(np.float32)
    d = torch.from_numpy(depth.copy())
    d -= torch.min(d)
    d /= torch.max(d)
    depth_u8 = (d.numpy() * 255.0).clip(0, 255).astype(np.uint8)
    t['depth/out'] = depth
    t['depth/u8'] = depth_u8
    t['depth/resized'] = cv2.resize(depth_u8, (64, 48), interpolation=cv2.INTER_LINEAR)
    # normal: [1, 4, 24, 32] -> 40 x 30
    normal = rng.normal(0, 0.7, (1, 4, 24, 32)).astype(np.float32)
    n = torch.from_numpy(normal)[:, :3]
    n = ((n + 1) * 0.5).clip(0, 1)
    n_u8 = (n[0].permute(1, 2, 0).numpy() * 255.0).clip(0, 255).astype(np.uint8)
    t['normal/out'] = normal
    t['normal/u8'] = n_u8
    t['normal/resized'] = cv2.resize(n_u8, (40, 30), interpolation=cv2.INTER_LINEAR)
    # hed: 5 side maps for a 32 x 48 input
    H, W = 32, 48
    sides = [rng.normal(-1, 2, (1, 1, H >> k, W >> k)).astype(np.float32) for k in range(5)]
    edges = [cv2.resize(e[0, 0], (W, H), interpolation=cv2.INTER_LINEAR) for e in sides]
    edges = np.stack(edges, axis=2)
    edge = 1 / (1 + np.exp(-np.mean(edges, axis=2).astype(np.float64)))
    t['hed/u8'] = (edge * 255.0).clip(0, 255).astype(np.uint8)
    for k, sd in enumerate(sides):
        t[f'hed/side{k}'] = sd
    # pidinet / lineart: [1, 1, 32, 48] maps in [0, 1]
    unit = rng.uniform(-0.05, 1.05, (1, 1, H, W)).astype(np.float32)
    t['unit/out'] = unit
    u8 = (unit * 255.0).clip(0, 255).astype(np.uint8)[0, 0]
    t['unit/u8'] = u8
    t['lineart/resized'] = 255 - cv2.resize(u8, (40, 28), interpolation=cv2.INTER_LINEAR)
    # segmentation: logits [1, 150, 16, 16] -> 40 x 36
    logits = rng.normal(0, 1, (1, 150, 16, 16)).astype(np.float32)
    up = torch.nn.functional.interpolate(torch.from_numpy(logits), size=(36, 40), mode='bilinear', align_corners=False)
    ids = up.argmax(dim=1)[0].numpy()
    palette = np.array(ade_palette_reference(), dtype=np.uint8)
    color = np.zeros((36, 40, 3), dtype=np.uint8)
    for label, c in enumerate(palette):
        color[ids == label, :] = c
    t['seg/logits'] = logits
    t['seg/ids'] = ids.astype(np.int32)
    t['seg/color'] = color
    t['seg/palette'] = palette
    save_fixture('annotators/dense', t, {})


def ade_palette_reference():
    """ADE20k palette of controlnet_aux util.ade_palette (mmsegmentation's ADE20KDataset.PALETTE)."""
    assert len(ADE_PALETTE) == 150
    return ADE_PALETTE


# controlnet_aux/util.py ade_palette(), 150 RGB triples
ADE_PALETTE = [
    [120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50], [4, 200, 3], [120, 120, 80],
    [140, 140, 140], [204, 5, 255], [230, 230, 230], [4, 250, 7], [224, 5, 255], [235, 255, 7], [150, 5, 61],
    [120, 120, 70], [8, 255, 51], [255, 6, 82], [143, 255, 140], [204, 255, 4], [255, 51, 7], [204, 70, 3],
    [0, 102, 200], [61, 230, 250], [255, 6, 51], [11, 102, 255], [255, 7, 71], [255, 9, 224], [9, 7, 230],
    [220, 220, 220], [255, 9, 92], [112, 9, 255], [8, 255, 214], [7, 255, 224], [255, 184, 6], [10, 255, 71],
    [255, 41, 10], [7, 255, 255], [224, 255, 8], [102, 8, 255], [255, 61, 6], [255, 194, 7], [255, 122, 8],
    [0, 255, 20], [255, 8, 41], [255, 5, 153], [6, 51, 255], [235, 12, 255], [160, 150, 20], [0, 163, 255],
    [140, 140, 140], [250, 10, 15], [20, 255, 0], [31, 255, 0], [255, 31, 0], [255, 224, 0], [153, 255, 0],
    [0, 0, 255], [255, 71, 0], [0, 235, 255], [0, 173, 255], [31, 0, 255], [11, 200, 200], [255, 82, 0],
    [0, 255, 245], [0, 61, 255], [0, 255, 112], [0, 255, 133], [255, 0, 0], [255, 163, 0], [255, 102, 0],
    [194, 255, 0], [0, 143, 255], [51, 255, 0], [0, 82, 255], [0, 255, 41], [0, 255, 173], [10, 0, 255],
    [173, 255, 0], [0, 255, 153], [255, 92, 0], [255, 0, 255], [255, 0, 245], [255, 0, 102], [255, 173, 0],
    [255, 0, 20], [255, 184, 184], [0, 31, 255], [0, 255, 61], [0, 71, 255], [255, 0, 204], [0, 255, 194],
    [0, 255, 82], [0, 10, 255], [0, 112, 255], [51, 0, 255], [0, 194, 255], [0, 122, 255], [0, 255, 163],
    [255, 153, 0], [0, 255, 10], [255, 112, 0], [143, 255, 0], [82, 0, 255], [163, 255, 0], [255, 235, 0],
    [8, 184, 170], [133, 0, 255], [0, 255, 92], [184, 0, 255], [255, 0, 31], [0, 184, 255], [0, 214, 255],
    [255, 0, 112], [92, 255, 0], [0, 224, 255], [112, 224, 255], [70, 184, 160], [163, 0, 255], [153, 0, 255],
    [71, 255, 0], [255, 0, 163], [255, 204, 0], [255, 0, 143], [0, 255, 235], [133, 255, 0], [255, 0, 235],
    [245, 0, 255], [255, 0, 122], [255, 245, 0], [10, 190, 212], [214, 255, 0], [0, 204, 255], [20, 0, 255],
    [255, 255, 0], [0, 153, 255], [0, 41, 255], [0, 255, 204], [41, 0, 255], [41, 255, 0], [173, 0, 255],
    [0, 245, 255], [71, 0, 255], [122, 0, 255], [0, 255, 184], [0, 92, 255], [184, 255, 0], [0, 133, 255],
    [255, 214, 0], [25, 194, 194], [102, 255, 0], [92, 0, 255],
]


SECTIONS = {
    'canny': canny_fixtures,
    'shuffle': shuffle_fixtures,
    'qrcode': qrcode_fixtures,
    'inpaint': inpaint_fixtures,
    'scribble': scribble_fixtures,
    'draw': draw_fixtures,
    'pose': pose_fixtures,
    'face': face_fixtures,
    'mlsd': mlsd_fixtures,
    'dense': dense_fixtures,
}

if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    images = test_images()
    wanted = sys.argv[1:] or list(SECTIONS)
    for s in wanted:
        SECTIONS[s](images)
        print('wrote', s)
