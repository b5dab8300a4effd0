// DWPose whole-body pose (the ControlNet 1.1 "dw_openpose_full" annotator, ONNX version of
// lllyasviel/ControlNet-v1-1-nightly annotator/dwpose: onnxdet.py, onnxpose.py, wholebody.py):
// YOLOX finds people, each box is cropped by an affine warp to the pose model's input, SimCC outputs give
// 133 COCO-WholeBody keypoints, which are mapped to OpenPose's 18 body points plus hands and face.
import type { RgbImage } from '../../pipeline/types.ts';
import type { Keypoint, PosePerson } from '../pose-draw.ts';
import { runF32, sessionOf, type F32Output, type ModelRef } from './session.ts';

export type Box = [number, number, number, number];

const DET_SIZE = 640;

/** Letterbox to 640x640 (top-left, pad 114), BGR 0..255 float CHW, as onnxdet.preprocess. */
export function detectorInput(bgr: RgbImage): { data: Float32Array; ratio: number } {
  const r = Math.min(DET_SIZE / bgr.height, DET_SIZE / bgr.width);
  const w = Math.trunc(bgr.width * r), h = Math.trunc(bgr.height * r);
  const resized = sampleBilinear(bgr, w, h, (x, y) => [(x + 0.5) / r - 0.5, (y + 0.5) / r - 0.5], true);
  const n = DET_SIZE * DET_SIZE;
  const data = new Float32Array(3 * n).fill(114);
  for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[c * n + y * DET_SIZE + x] = resized[(y * w + x) * 3 + c]!;
  return { data, ratio: r };
}

/**
 * Bilinear sampling of a uint8 image at mapped source coordinates; out-of-image taps read 0 (warpAffine's
 * constant border) or the edge pixel (`replicate`, as cv2.resize).
 */
function sampleBilinear(img: RgbImage, w: number, h: number, map: (x: number, y: number) => [number, number], replicate: boolean): Float32Array {
  const out = new Float32Array(w * h * 3);
  const px = (x: number, y: number, c: number) => {
    if (replicate) {
      x = Math.min(Math.max(x, 0), img.width - 1);
      y = Math.min(Math.max(y, 0), img.height - 1);
    } else if (x < 0 || y < 0 || x >= img.width || y >= img.height) return 0;
    return img.data[(y * img.width + x) * 3 + c]!;
  };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let [sx, sy] = map(x, y);
      if (replicate) { sx = Math.max(sx, 0); sy = Math.max(sy, 0); }
      const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
      for (let c = 0; c < 3; c++) {
        const v = (px(x0, y0, c) * (1 - fx) + px(x0 + 1, y0, c) * fx) * (1 - fy) + (px(x0, y0 + 1, c) * (1 - fx) + px(x0 + 1, y0 + 1, c) * fx) * fy;
        out[(y * w + x) * 3 + c] = replicate ? Math.round(v) : v;
      }
    }
  }
  return out;
}

/** YOLOX head decoding (demo_postprocess), person boxes with score > 0.1, NMS 0.45, then score > 0.3. */
export function decodePersons(out: F32Output, ratio: number, scoreThr = 0.3): Box[] {
  const [, n, stride] = out.dims as [number, number, number];
  const cands: { box: Box; score: number }[] = [];
  let i = 0;
  for (const s of [8, 16, 32]) {
    const gs = DET_SIZE / s;
    for (let gy = 0; gy < gs; gy++) {
      for (let gx = 0; gx < gs; gx++, i++) {
        if (i >= n) break;
        const o = out.data.subarray(i * stride, (i + 1) * stride);
        const score = o[4]! * o[5]!; // objectness x class 0 (person)
        if (!(score > 0.1)) continue;
        const cx = (o[0]! + gx) * s, cy = (o[1]! + gy) * s, w = Math.exp(o[2]!) * s, h = Math.exp(o[3]!) * s;
        cands.push({ box: [(cx - w / 2) / ratio, (cy - h / 2) / ratio, (cx + w / 2) / ratio, (cy + h / 2) / ratio], score });
      }
    }
  }
  return nms(cands, 0.45).filter((c) => c.score > scoreThr).map((c) => c.box);
}

/** Greedy NMS with YOLOX's +1 pixel areas. */
function nms(c: { box: Box; score: number }[], thr: number): { box: Box; score: number }[] {
  const order = [...c].sort((a, b) => b.score - a.score);
  const keep: { box: Box; score: number }[] = [];
  const area = (b: Box) => (b[2] - b[0] + 1) * (b[3] - b[1] + 1);
  for (const a of order) {
    const overl = keep.some((k) => {
      const w = Math.max(0, Math.min(a.box[2], k.box[2]) - Math.max(a.box[0], k.box[0]) + 1);
      const h = Math.max(0, Math.min(a.box[3], k.box[3]) - Math.max(a.box[1], k.box[1]) + 1);
      return (w * h) / (area(a.box) + area(k.box) - w * h) > thr;
    });
    if (!overl) keep.push(a);
  }
  return keep;
}

const POSE_MEAN = [123.675, 116.28, 103.53], POSE_STD = [58.395, 57.12, 57.375];

/** Box → center and scale (padding 1.25, aspect fixed to the model's w/h), as onnxpose.bbox_xyxy2cs + _fix_aspect_ratio. */
export function boxToCenterScale(b: Box, inW: number, inH: number): { cx: number; cy: number; sw: number; sh: number } {
  let sw = (b[2] - b[0]) * 1.25, sh = (b[3] - b[1]) * 1.25;
  const ar = inW / inH;
  if (sw > sh * ar) sh = sw / ar;
  else sw = sh * ar;
  return { cx: (b[0] + b[2]) * 0.5, cy: (b[1] + b[3]) * 0.5, sw, sh };
}

/** The crop the pose model sees: an axis-aligned similarity warp (rotation 0), normalized with the mmpose mean/std. */
export function poseInput(bgr: RgbImage, cs: { cx: number; cy: number; sw: number; sh: number }, inW: number, inH: number): Float32Array {
  const s = inW / cs.sw;
  const crop = sampleBilinear(bgr, inW, inH, (x, y) => [(x - inW / 2) / s + cs.cx, (y - inH / 2) / s + cs.cy], false);
  const n = inW * inH;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) for (let i = 0; i < n; i++) out[c * n + i] = (crop[i * 3 + c]! - POSE_MEAN[c]!) / POSE_STD[c]!;
  return out;
}

/** SimCC decoding: argmax bins / split ratio 2, score = min of the two maxima; back to image pixels. */
export function decodeSimcc(sx: F32Output, sy: F32Output, person: number, cs: { cx: number; cy: number; sw: number; sh: number }, inW: number, inH: number): { xy: [number, number][]; scores: number[] } {
  const k = sx.dims[1]!, wx = sx.dims[2]!, wy = sy.dims[2]!;
  const xy: [number, number][] = [], scores: number[] = [];
  for (let j = 0; j < k; j++) {
    const ax = sx.data.subarray((person * k + j) * wx, (person * k + j + 1) * wx);
    const ay = sy.data.subarray((person * k + j) * wy, (person * k + j + 1) * wy);
    let bx = 0, by = 0;
    for (let i = 1; i < wx; i++) if (ax[i]! > ax[bx]!) bx = i;
    for (let i = 1; i < wy; i++) if (ay[i]! > ay[by]!) by = i;
    const v = Math.min(ax[bx]!, ay[by]!);
    const lx = v <= 0 ? -1 : bx, ly = v <= 0 ? -1 : by;
    xy.push([(lx / 2 / inW) * cs.sw + cs.cx - cs.sw / 2, (ly / 2 / inH) * cs.sh + cs.cy - cs.sh / 2]);
    scores.push(v);
  }
  return { xy, scores };
}

const MMPOSE_IDX = [17, 6, 8, 10, 7, 9, 12, 14, 16, 13, 15, 2, 1, 4, 3];
const OPENPOSE_IDX = [1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17];

/**
 * COCO-17 body keypoints (pixels) and scores → OpenPose's 18 body points, normalized: a neck from the shoulders
 * (present when both shoulders score over `threshold`), inserted at 17, then `new[openpose_idx] =
 * old[mmpose_idx]` (wholebody.py); points kept with score > threshold (0.3 in the annotator).
 */
export function cocoToOpenposeBody(xy: [number, number][], scores: number[], width: number, height: number, threshold = 0.3): Keypoint[] {
  const neck: [number, number] = [(xy[5]![0] + xy[6]![0]) / 2, (xy[5]![1] + xy[6]![1]) / 2];
  const neckScore = scores[5]! > threshold && scores[6]! > threshold ? 1 : 0;
  const kp = [...xy.slice(0, 17), neck];
  const sc = [...scores.slice(0, 17), neckScore];
  const kp2 = [...kp], sc2 = [...sc];
  OPENPOSE_IDX.forEach((o, i) => {
    kp2[o] = kp[MMPOSE_IDX[i]!]!;
    sc2[o] = sc[MMPOSE_IDX[i]!]!;
  });
  return Array.from({ length: 18 }, (_, j) => (sc2[j]! > threshold ? { x: kp2[j]![0] / width, y: kp2[j]![1] / height } : null));
}

/**
 * 133 COCO-WholeBody keypoints (pixels) and scores → the annotator's people: the body as cocoToOpenposeBody,
 * hands and face with score >= 0.3.
 */
export function wholebodyToPerson(xy: [number, number][], scores: number[], width: number, height: number): PosePerson {
  const pt = (j: number): Keypoint => (!(scores[j]! < 0.3) ? { x: xy[j]![0] / width, y: xy[j]![1] / height } : null);
  const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
  return {
    body: cocoToOpenposeBody(xy, scores, width, height),
    face: range(23, 91).map(pt),
    hands: [range(91, 112), range(112, 133)].map((r) => r.map(pt)),
  };
}

export function toBgr(img: RgbImage): RgbImage {
  const d = new Uint8Array(img.data.length);
  for (let i = 0; i < d.length; i += 3) {
    d[i] = img.data[i + 2]!;
    d[i + 1] = img.data[i + 1]!;
    d[i + 2] = img.data[i]!;
  }
  return { width: img.width, height: img.height, data: d };
}

/** Detects every person and their whole-body keypoints. */
export async function detectPeople(img: RgbImage, detector: ModelRef, poseModel: ModelRef): Promise<PosePerson[]> {
  const bgr = toBgr(img);
  const det = await sessionOf(detector);
  const { data, ratio } = detectorInput(bgr);
  const [raw] = await runF32(det, data, [1, 3, DET_SIZE, DET_SIZE]);
  let boxes = decodePersons(raw!, ratio);
  // With no person found the annotator still runs the pose model on the whole image.
  if (boxes.length === 0) boxes = [[0, 0, img.width, img.height]];
  const pose = await sessionOf(poseModel);
  const meta = pose.inputMetadata[0];
  const shape = meta && 'shape' in meta ? meta.shape : [];
  const inH = typeof shape[2] === 'number' ? shape[2] : 384, inW = typeof shape[3] === 'number' ? shape[3] : 288;
  const people: PosePerson[] = [];
  for (const b of boxes) {
    const cs = boxToCenterScale(b, inW, inH);
    const [sx, sy] = await runF32(pose, poseInput(bgr, cs, inW, inH), [1, 3, inH, inW]);
    const { xy, scores } = decodeSimcc(sx!, sy!, 0, cs, inW, inH);
    people.push(wholebodyToPerson(xy, scores, img.width, img.height));
  }
  return people;
}
