// MediaPipe face mesh as controlnet_aux's MediaPipeFaceDetector runs it (mp.solutions.face_mesh, static image
// mode): BlazeFace short range finds the faces, then the face landmark model runs on each face's crop.
// Every step re-implements the MediaPipe (google-ai-edge/mediapipe, Apache-2.0) calculator named in its comment,
// with the options of mediapipe/modules/face_detection/face_detection_short_range.pbtxt (detector) and
// mediapipe/modules/face_landmark/{face_landmark_front_cpu,face_detection_front_detection_to_roi,
// face_landmark_cpu}.pbtxt (crop and landmarks). Differences: the crops are sampled with float bilinear
// interpolation (OpenCV's warpPerspective uses 5-bit fixed point: values differ by at most 1), and the
// AssociationNormRectCalculator step (drops a face ROI overlapping another by IoU > 0.5, only possible for
// detections that survived the 0.3 NMS) is not done.
import type { RgbImage } from '../../pipeline/types.ts';
import type { Landmark } from '../face-draw.ts';
import { withIris } from './iris.ts';
import { runF32, sessionOf, type F32Output, type ModelRef } from './session.ts';

export { sessionOf, type ModelRef } from './session.ts';
import type { ort } from '../../onnx/session.ts';

/** How many faces are meshed at most (mp FaceMesh max_num_faces; controlnet_aux's default is 1). */
export const MAX_FACES = 10;
/** min_detection_confidence of controlnet_aux (TensorsToDetections min_score_thresh). */
export const MIN_DETECTION_SCORE = 0.5;

// ---------------------------------------------------------------------------------------------------------
// Anchors: SsdAnchorsCalculator (mediapipe/calculators/tflite/ssd_anchors_calculator.cc)

export interface SsdAnchorOptions {
  inputWidth: number;
  inputHeight: number;
  minScale: number;
  maxScale: number;
  offsetX: number;
  offsetY: number;
  strides: number[];
  aspectRatios: number[];
  interpolatedScaleAspectRatio: number;
  fixedAnchorSize: boolean;
}

/** face_detection_short_range.pbtxt's SsdAnchorsCalculatorOptions (num_layers 4). */
export const SHORT_RANGE_ANCHORS: SsdAnchorOptions = {
  inputWidth: 128,
  inputHeight: 128,
  minScale: 0.1484375,
  maxScale: 0.75,
  offsetX: 0.5,
  offsetY: 0.5,
  strides: [8, 16, 16, 16],
  aspectRatios: [1.0],
  interpolatedScaleAspectRatio: 1.0,
  fixedAnchorSize: true,
};

export interface Anchor {
  x: number;
  y: number;
  w: number;
  h: number;
}

const f32 = Math.fround;

function anchorScale(min: number, max: number, i: number, n: number): number {
  return n === 1 ? (min + max) * 0.5 : min + ((max - min) * i) / (n - 1);
}

/** The anchors in MediaPipe's order: layers of equal stride merged, then rows, columns, anchors of a cell. */
export function ssdAnchors(o: SsdAnchorOptions = SHORT_RANGE_ANCHORS): Anchor[] {
  const anchors: Anchor[] = [];
  const n = o.strides.length;
  let layer = 0;
  while (layer < n) {
    const heights: number[] = [], widths: number[] = [];
    let last = layer;
    while (last < n && o.strides[last] === o.strides[layer]) {
      const scale = anchorScale(o.minScale, o.maxScale, last, n);
      const ratios: number[] = [], scales: number[] = [];
      for (const r of o.aspectRatios) { ratios.push(r); scales.push(scale); }
      if (o.interpolatedScaleAspectRatio > 0) {
        const next = last === n - 1 ? 1 : anchorScale(o.minScale, o.maxScale, last + 1, n);
        scales.push(Math.sqrt(scale * next));
        ratios.push(o.interpolatedScaleAspectRatio);
      }
      ratios.forEach((r, i) => { heights.push(scales[i]! / Math.sqrt(r)); widths.push(scales[i]! * Math.sqrt(r)); });
      last++;
    }
    const stride = o.strides[layer]!;
    const fh = Math.ceil(o.inputHeight / stride), fw = Math.ceil(o.inputWidth / stride);
    for (let y = 0; y < fh; y++) {
      for (let x = 0; x < fw; x++) {
        for (let a = 0; a < heights.length; a++) {
          anchors.push({
            x: f32((x + o.offsetX) / fw),
            y: f32((y + o.offsetY) / fh),
            w: o.fixedAnchorSize ? 1 : f32(widths[a]!),
            h: o.fixedAnchorSize ? 1 : f32(heights[a]!),
          });
        }
      }
    }
    layer = last;
  }
  return anchors;
}

// ---------------------------------------------------------------------------------------------------------
// Decoding: TensorsToDetectionsCalculator (mediapipe/calculators/tensor/tensors_to_detections_calculator.cc)
// with face_detection_short_range.pbtxt's options: num_coords 16, box_coord_offset 0, keypoint_coord_offset 4,
// 6 keypoints of 2 values, reverse_output_order (x before y), x/y/w/h_scale 128, sigmoid_score,
// score_clipping_thresh 100, min_score_thresh 0.5.

/** A detection in normalized coordinates (of the detector's input, or of the image once projected). */
export interface FaceDetection {
  score: number;
  xmin: number;
  ymin: number;
  width: number;
  height: number;
  /** 6 keypoints: eyes (0: the eye on the image's left, 1: the other), nose tip, mouth, ear tragions */
  keypoints: [number, number][];
}

export function decodeDetections(regressors: Float32Array, classificators: Float32Array, anchors: Anchor[], minScore = MIN_DETECTION_SCORE, scale = 128, numKeypoints = 6): FaceDetection[] {
  const out: FaceDetection[] = [];
  const coords = regressors.length / anchors.length;
  const want = 4 + 2 * numKeypoints;
  if (coords !== want || classificators.length !== anchors.length) {
    throw new Error(`detector outputs ${regressors.length} and ${classificators.length} values, expected ${anchors.length} x ${want} and ${anchors.length} x 1`);
  }
  for (let i = 0; i < anchors.length; i++) {
    const raw = Math.min(100, Math.max(-100, classificators[i]!));
    const score = f32(1 / f32(1 + f32(Math.exp(-raw))));
    if (score < minScore) continue;
    const a = anchors[i]!, r = regressors.subarray(i * want, i * want + want);
    // float32 arithmetic, one rounding per operation as in the C++
    const lin = (v: number, anchorSize: number, centre: number) => f32(f32(f32(v / scale) * anchorSize) + centre);
    const cx = lin(r[0]!, a.w, a.x), cy = lin(r[1]!, a.h, a.y);
    const w = f32(f32(r[2]! / scale) * a.w), h = f32(f32(r[3]! / scale) * a.h);
    const xmin = f32(cx - w / 2), ymin = f32(cy - h / 2), xmax = f32(cx + w / 2), ymax = f32(cy + h / 2);
    // ConvertToDetection keeps xmin, ymin, width = xmax - xmin, height = ymax - ymin; invalid boxes are skipped
    const width = f32(xmax - xmin), height = f32(ymax - ymin);
    if (width < 0 || height < 0) continue;
    const keypoints: [number, number][] = [];
    for (let k = 0; k < numKeypoints; k++) keypoints.push([lin(r[4 + 2 * k]!, a.w, a.x), lin(r[5 + 2 * k]!, a.h, a.y)]);
    out.push({ score, xmin, ymin, width, height, keypoints });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// NonMaxSuppressionCalculator (mediapipe/calculators/util/non_max_suppression_calculator.cc), as
// face_detection.pbtxt configures it: algorithm WEIGHTED, overlap INTERSECTION_OVER_UNION, threshold 0.3.

function iou(a: FaceDetection, b: FaceDetection): number {
  const ax1 = a.xmin + a.width, ay1 = a.ymin + a.height, bx1 = b.xmin + b.width, by1 = b.ymin + b.height;
  // Rectangle_f::Intersects: false when apart or when either rectangle is empty (min > max)
  if (b.xmin > ax1 || bx1 < a.xmin || b.ymin > ay1 || by1 < a.ymin || a.width < 0 || a.height < 0 || b.width < 0 || b.height < 0) return 0;
  const inter = Math.max(0, Math.min(ax1, bx1) - Math.max(a.xmin, b.xmin)) * Math.max(0, Math.min(ay1, by1) - Math.max(a.ymin, b.ymin));
  const norm = a.width * a.height + b.width * b.height - inter;
  return norm > 0 ? inter / norm : 0;
}

/**
 * Weighted NMS: the best remaining detection takes every remaining one overlapping it by IoU > threshold
 * (itself included) and becomes their score-weighted mean box and keypoints, keeping its own score.
 */
export function weightedNms(dets: FaceDetection[], threshold = 0.3): FaceDetection[] {
  // descending score; the sort is stable here (std::sort's order of equal scores is unspecified)
  let remaining = dets.map((d, i) => ({ d, i })).sort((p, q) => q.d.score - p.d.score || p.i - q.i).map((p) => p.d);
  const out: FaceDetection[] = [];
  while (remaining.length > 0) {
    const top = remaining[0]!;
    const cands: FaceDetection[] = [], rest: FaceDetection[] = [];
    for (const d of remaining) (iou(d, top) > threshold ? cands : rest).push(d);
    let merged = top;
    if (cands.length > 0) {
      let total = 0, x0 = 0, y0 = 0, x1 = 0, y1 = 0;
      const kp = top.keypoints.map(() => [0, 0] as [number, number]);
      for (const c of cands) {
        total += c.score;
        x0 += c.xmin * c.score; y0 += c.ymin * c.score;
        x1 += (c.xmin + c.width) * c.score; y1 += (c.ymin + c.height) * c.score;
        c.keypoints.forEach(([x, y], k) => { kp[k]![0] += x * c.score; kp[k]![1] += y * c.score; });
      }
      const xmin = x0 / total, ymin = y0 / total;
      merged = { score: top.score, xmin, ymin, width: x1 / total - xmin, height: y1 / total - ymin, keypoints: kp.map(([x, y]) => [x / total, y / total]) };
    }
    out.push(merged);
    // a detection that overlaps nothing, not even itself (an empty box), ends the loop
    if (rest.length === remaining.length) break;
    remaining = rest;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Crops: ImageToTensorCalculator's OpenCV path (image_to_tensor_converter_opencv.cc): the ROI's corners
// (cv::RotatedRect::points) are mapped onto the tensor's corners (0,0)..(size,size) by a perspective
// transform, the image is sampled bilinearly at the mapped integer tensor pixels, then scaled to a float range.

/** A rotated rectangle in image pixels: centre, size, rotation in radians (MediaPipe's RotatedRect). */
export interface PixelRoi {
  cx: number;
  cy: number;
  w: number;
  h: number;
  rotation: number;
}

/** Samples the ROI into a size x size RGB crop; `border` is BORDER_ZERO (0) or BORDER_REPLICATE. */
export function cropRoi(img: RgbImage, roi: PixelRoi, size: number, border: 'zero' | 'replicate'): Uint8Array {
  const out = new Uint8Array(size * size * 3);
  const c = Math.cos(roi.rotation), s = Math.sin(roi.rotation);
  const { width: W, height: H, data } = img;
  const px = (x: number, y: number, ch: number) => {
    if (border === 'replicate') {
      x = Math.min(Math.max(x, 0), W - 1);
      y = Math.min(Math.max(y, 0), H - 1);
    } else if (x < 0 || y < 0 || x >= W || y >= H) return 0;
    return data[(y * W + x) * 3 + ch]!;
  };
  for (let v = 0; v < size; v++) {
    for (let u = 0; u < size; u++) {
      const dx = (u / size - 0.5) * roi.w, dy = (v / size - 0.5) * roi.h;
      const sx = roi.cx + c * dx - s * dy, sy = roi.cy + s * dx + c * dy;
      const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
      for (let ch = 0; ch < 3; ch++) {
        const val = (px(x0, y0, ch) * (1 - fx) + px(x0 + 1, y0, ch) * fx) * (1 - fy) + (px(x0, y0 + 1, ch) * (1 - fx) + px(x0 + 1, y0 + 1, ch) * fx) * fy;
        out[(v * size + u) * 3 + ch] = Math.round(val);
      }
    }
  }
  return out;
}

/** uint8 RGB HWC → float tensor in [min, max] (NCHW, or NHWC for models converted without transposition). */
export function toTensor(rgb: Uint8Array, size: number, min: number, max: number, nhwc: boolean): Float32Array {
  const n = size * size, k = (max - min) / 255;
  const x = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) x[nhwc ? i * 3 + c : c * n + i] = rgb[i * 3 + c]! * k + min;
  return x;
}

/** The model's square input size and layout, read from its first input's shape. */
export function inputLayout(session: ort.InferenceSession, fallback: number): { size: number; nhwc: boolean } {
  const meta = session.inputMetadata[0];
  const shape = (meta && 'shape' in meta ? meta.shape : []) as (number | string)[];
  const nhwc = shape[3] === 3;
  const size = typeof shape[2] === 'number' && !nhwc ? shape[2] : typeof shape[1] === 'number' && nhwc ? shape[1] : fallback;
  return { size, nhwc };
}

/** The detector's letterbox (keep_aspect_ratio): the whole image padded to a centred square, no rotation. */
export function letterboxRoi(width: number, height: number): PixelRoi {
  const side = Math.max(width, height);
  return { cx: width / 2, cy: height / 2, w: side, h: side, rotation: 0 };
}

/** DetectionProjectionCalculator: detection in the letterboxed tensor's [0,1] → normalized image coordinates. */
export function projectDetection(d: FaceDetection, roi: PixelRoi, width: number, height: number): FaceDetection {
  const px = (u: number) => (roi.cx + (u - 0.5) * roi.w) / width, py = (v: number) => (roi.cy + (v - 0.5) * roi.h) / height;
  const xmin = px(d.xmin), ymin = py(d.ymin);
  return { score: d.score, xmin, ymin, width: px(d.xmin + d.width) - xmin, height: py(d.ymin + d.height) - ymin, keypoints: d.keypoints.map(([x, y]) => [px(x), py(y)]) };
}

// ---------------------------------------------------------------------------------------------------------
// Face ROI: face_detection_front_detection_to_roi.pbtxt: DetectionsToRectsCalculator (rotation from keypoint
// 0 to keypoint 1, the eyes, target angle 0) then RectTransformationCalculator (square_long, scale 1.5).

/** MediaPipe's NormalizedRect: centre and size normalized by the image size, rotation in radians. */
export interface NormRect {
  cx: number;
  cy: number;
  w: number;
  h: number;
  rotation: number;
}

export function normalizeRadians(a: number): number {
  return a - 2 * Math.PI * Math.floor((a + Math.PI) / (2 * Math.PI));
}

export function faceRoi(d: FaceDetection, width: number, height: number, upright = true): NormRect {
  let rotation = 0;
  if (upright) {
    const [x0, y0] = d.keypoints[0]!, [x1, y1] = d.keypoints[1]!;
    rotation = normalizeRadians(0 - Math.atan2(-(y1 - y0) * height, (x1 - x0) * width));
  }
  const long = Math.max(d.width * width, d.height * height);
  return { cx: d.xmin + d.width / 2, cy: d.ymin + d.height / 2, w: (long / width) * 1.5, h: (long / height) * 1.5, rotation };
}

export function toPixelRoi(r: NormRect, width: number, height: number): PixelRoi {
  return { cx: r.cx * width, cy: r.cy * height, w: r.w * width, h: r.h * height, rotation: r.rotation };
}

/** LandmarkProjectionCalculator: landmarks normalized to the crop ([0,1]) → normalized image coordinates. */
export function projectLandmarks(pts: ArrayLike<number>, stride: number, count: number, roi: NormRect): Landmark[] {
  const c = Math.cos(roi.rotation), s = Math.sin(roi.rotation);
  const out: Landmark[] = [];
  for (let i = 0; i < count; i++) {
    const x = pts[i * stride]! - 0.5, y = pts[i * stride + 1]! - 0.5;
    out.push({ x: (c * x - s * y) * roi.w + roi.cx, y: (s * x + c * y) * roi.h + roi.cy });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Running the two models

/** Faces found by BlazeFace short range, in normalized image coordinates, best first (at most maxFaces). */
export async function detectFaceBoxes(img: RgbImage, detector: ModelRef, maxFaces = MAX_FACES): Promise<FaceDetection[]> {
  const session = await sessionOf(detector);
  const { size, nhwc } = inputLayout(session, 128);
  const roi = letterboxRoi(img.width, img.height);
  const x = toTensor(cropRoi(img, roi, size, 'zero'), size, -1, 1, nhwc);
  const outs = await runF32(session, x, nhwc ? [1, size, size, 3] : [1, 3, size, size]);
  const anchors = ssdAnchors({ ...SHORT_RANGE_ANCHORS, inputWidth: size, inputHeight: size });
  // the regressors are the output with 16 values per anchor, the classificators the one with 1
  const pick = (k: number): F32Output | undefined => outs.find((o) => o.data.length === anchors.length * k);
  const reg = pick(16), cls = pick(1);
  if (!reg || !cls) throw new Error(`face detector outputs ${outs.map((o) => `[${o.dims.join(',')}]`).join(', ')}, expected regressors [1,${anchors.length},16] and classificators [1,${anchors.length},1]`);
  const dets = weightedNms(decodeDetections(reg.data, cls.data, anchors, MIN_DETECTION_SCORE, size));
  // ClipDetectionVectorSizeCalculator keeps the first max_num_faces
  return dets.slice(0, maxFaces).map((d) => projectDetection(d, roi, img.width, img.height));
}

/**
 * Face landmarks (468, or 478 with iris points) in the ROI, normalized to the image, or null when the
 * model's face-presence score (a second output with one value, a logit) is under 0.5.
 */
export async function faceLandmarks(img: RgbImage, landmarkModel: ModelRef, roi: NormRect): Promise<Landmark[] | null> {
  const session = await sessionOf(landmarkModel);
  const { size, nhwc } = inputLayout(session, 192);
  const crop = cropRoi(img, toPixelRoi(roi, img.width, img.height), size, 'replicate');
  const outs = await runF32(session, toTensor(crop, size, 0, 1, nhwc), nhwc ? [1, size, size, 3] : [1, 3, size, size]);
  const pts = outs[0]!.data;
  if (pts.length < 468 * 3) throw new Error(`face landmark model output has ${pts.length} values, expected 468 x 3 or more`);
  if (outs[1] && outs[1].data.length === 1 && 1 / (1 + Math.exp(-outs[1].data[0]!)) < 0.5) return null;
  const count = Math.floor(pts.length / 3);
  const norm = new Float32Array(count * 2);
  for (let i = 0; i < count; i++) { norm[2 * i] = pts[3 * i]! / size; norm[2 * i + 1] = pts[3 * i + 1]! / size; }
  return projectLandmarks(norm, 2, count, roi);
}

/**
 * Every face's landmarks: detector, then the landmark model on each face's upright 1.5x square crop, then (when
 * `irisModel` is given and the landmark model gave no iris points) MediaPipe's iris model on the two eyes
 * (iris.ts), which makes 478 points with the pupil centres at 468 and 473. `irisModel` may be a function that
 * gives the model, called only when a face needs it.
 */
export async function detectFaces(img: RgbImage, detector: ModelRef, landmarkModel: ModelRef, irisModel?: ModelRef | (() => Promise<ModelRef>), maxFaces = MAX_FACES): Promise<Landmark[][]> {
  const faces: Landmark[][] = [];
  for (const d of await detectFaceBoxes(img, detector, maxFaces)) {
    const lm = await faceLandmarks(img, landmarkModel, faceRoi(d, img.width, img.height));
    if (!lm) continue;
    // a function is called only when a face needs the iris model (its session is built on first use)
    faces.push(irisModel && lm.length === 468 ? await withIris(img, lm, typeof irisModel === 'function' ? await irisModel() : irisModel) : lm);
  }
  return faces;
}
