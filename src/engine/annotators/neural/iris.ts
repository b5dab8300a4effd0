// The iris points (MediaPipe face mesh indices 468..477) from MediaPipe's iris landmark model, run on the two eye
// crops the way MediaPipe's iris pipeline does (google-ai-edge/mediapipe, Apache-2.0):
// - mediapipe/modules/iris_landmark/iris_landmark_left_and_right_cpu.pbtxt: the "left" eye is the one bounded
//   by face landmarks 33 and 133 (the subject's right eye, on the image's left), the "right" eye by 362 and 263;
//   the right eye's crop is flipped horizontally (the model only knows left eyes).
// - iris_landmark_landmarks_to_roi.pbtxt: LandmarksToDetectionCalculator (the two corners' bounding box, the
//   corners as keypoints), DetectionsToRectsCalculator (rotation from corner 0 to corner 1, target angle 0),
//   RectTransformationCalculator (square_long, scale 2.3).
// - iris_landmark_cpu.pbtxt: ImageCroppingCalculator (BORDER_REPLICATE; image_cropping_calculator.cc RenderCpu:
//   centre and size rounded to whole pixels, the rotated rectangle's corners mapped onto the crop's corner pixel
//   centres by cv::warpPerspective with flags 0, i.e. nearest neighbour), ImageTransformationCalculator (64x64,
//   FIT: cv::resize with INTER_AREA when shrinking, INTER_LINEAR otherwise, zero padding to square; then cv::flip
//   for the right eye), TfLiteConverterCalculator (zero_center false: value / 255), the model,
//   TfLiteTensorsToLandmarksCalculator (5 iris points of x, y, z in 64-pixel units; x -> 64 - x when flipped),
//   LandmarkLetterboxRemovalCalculator, LandmarkProjectionCalculator (through the unrounded ROI).
// - mediapipe/graphs/iris_tracking/subgraphs/iris_renderer_cpu.pbtxt and iris_tracking_cpu.pbtxt: the face
//   landmarks with iris are the 468 face points, then the left eye's 5 iris points, then the right eye's, so 468
//   is the left (33/133) iris centre and 473 the right (362/263) one: iris point 0 is the centre, 1..4 its edge.
//   mp.solutions.face_mesh numbers them the same way (FACEMESH_RIGHT_IRIS 469..472 next to FACEMESH_RIGHT_EYE
//   33..133, its names being the subject's sides), which is what controlnet_aux's draw_pupils reads.
// Differences: MediaPipe's FaceMesh(refine_landmarks=True), which controlnet_aux calls, gets these points from
// face_landmark_with_attention instead (custom TFLite operators our importer does not translate); on the right
// eye its edge points 474 and 476 are on the other sides than here (the iris pipeline mirrors the flipped
// eye's x but keeps the model's point order), which changes no drawing (draw_pupils reads 468 and 473, and the
// iris contour 474-475-476-477 is the same quadrilateral); the eye contours that iris_tracking also refines
// (UpdateFaceLandmarksCalculator) are left as face_landmark gives them. OpenCV's INTER_LINEAR resize is
// reproduced in its fixed-point arithmetic, INTER_AREA in float64 (OpenCV: float32; equal on the tests' crops).
import type { RgbImage } from '../../pipeline/types.ts';
import type { Landmark } from '../face-draw.ts';
import { normalizeRadians, projectLandmarks, type NormRect } from './face.ts';
import { runF32, sessionOf, type ModelRef } from './session.ts';

/** The iris model's input side in pixels (iris_landmark.tflite: [1,64,64,3], RGB in [0,1]). */
export const IRIS_INPUT_SIZE = 64;
/** RectTransformationCalculator's scale_x / scale_y for the eye ROI (iris_landmark_landmarks_to_roi.pbtxt). */
export const EYE_ROI_SCALE = 2.3;
/** Face landmarks bounding each eye, in MediaPipe's order: [start, end] of the rotation vector. */
export const LEFT_EYE_CORNERS: readonly [number, number] = [33, 133];
export const RIGHT_EYE_CORNERS: readonly [number, number] = [362, 263];
/** Iris points per eye, the first being the pupil centre. */
export const IRIS_POINTS = 5;

/**
 * The eye's ROI from its two corner landmarks (normalized to the image), as LandmarksToDetection +
 * DetectionsToRects + RectTransformation compute it: centred on the corners' bounding box, turned so that the
 * corner-to-corner line is horizontal, square in pixels with side 2.3 x the box's longer side.
 */
export function eyeRoi(face: readonly Landmark[], corners: readonly [number, number], width: number, height: number): NormRect {
  const a = face[corners[0]], b = face[corners[1]];
  if (!a || !b) throw new Error(`eye ROI needs face landmarks ${corners[0]} and ${corners[1]}, the face has ${face.length}`);
  const xmin = Math.min(a.x, b.x), xmax = Math.max(a.x, b.x), ymin = Math.min(a.y, b.y), ymax = Math.max(a.y, b.y);
  const w = xmax - xmin, h = ymax - ymin;
  const rotation = normalizeRadians(0 - Math.atan2(-(b.y - a.y) * height, (b.x - a.x) * width));
  const long = Math.max(w * width, h * height);
  return { cx: xmin + w / 2, cy: ymin + h / 2, w: (long / width) * EYE_ROI_SCALE, h: (long / height) * EYE_ROI_SCALE, rotation };
}

/** std::round: halves away from zero (Math.round rounds -2.5 to -2). */
const roundHalfAway = (v: number) => Math.sign(v) * Math.round(Math.abs(v));
/** cvRound (lrint in the default rounding mode): halves to even. */
const roundHalfEven = (v: number) => {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/**
 * ImageCroppingCalculator's CPU crop of a normalized ROI: centre and size rounded to pixels, the rotated
 * rectangle's corners mapped onto the crop's corner pixel centres (0,0)..(w-1,h-1) by cv::warpPerspective with
 * flags 0, which is nearest-neighbour sampling, the image's edge pixels replicated outside. Returns the crop (RGB
 * HWC); null when it would be narrower than 2 pixels (the mapping needs w - 1 > 0).
 */
export function cropEye(img: RgbImage, roi: NormRect): RgbImage | null {
  const { width: W, height: H, data } = img;
  const cx = roundHalfAway(roi.cx * W), cy = roundHalfAway(roi.cy * H);
  const cw = roundHalfAway(roi.w * W), ch = roundHalfAway(roi.h * H);
  if (cw < 2 || ch < 2) return null;
  // the rotation as OpenCV builds RotatedRect's corners (angle in float degrees, back to radians)
  const c = Math.cos(roi.rotation), s = Math.sin(roi.rotation);
  const out = new Uint8Array(cw * ch * 3);
  for (let j = 0; j < ch; j++) {
    for (let i = 0; i < cw; i++) {
      const dx = (i / (cw - 1) - 0.5) * cw, dy = (j / (ch - 1) - 0.5) * ch;
      // warpPerspective flags 0 is INTER_NEAREST: the nearest source pixel (cvRound), edges replicated
      const x = Math.min(Math.max(roundHalfEven(cx + c * dx - s * dy), 0), W - 1);
      const y = Math.min(Math.max(roundHalfEven(cy + s * dx + c * dy), 0), H - 1);
      out.set(data.subarray((y * W + x) * 3, (y * W + x) * 3 + 3), (j * cw + i) * 3);
    }
  }
  return { width: cw, height: ch, data: out };
}

/**
 * cv::resize INTER_LINEAR of an 8-bit RGB image, bit for bit as OpenCV computes it on x86 (resize.cpp's generic
 * path with its SIMD vertical pass): per output index, src = (d + 0.5) * scale - 0.5 in float32 and weights
 * rounded to 11-bit fixed point; columns past the edge are clamped to it (weight on the edge pixel only), rows are
 * clamped as indices while keeping both weights; the vertical pass drops 4 bits, multiplies keeping the high 16
 * bits, and rounds the sum by 2 bits.
 */
function resizeLinear(img: RgbImage, tw: number, th: number): Uint8Array {
  const { width: W, height: H, data } = img;
  const f = Math.fround;
  const coefficients = (n: number, src: number, clampEdges: boolean) => {
    const scale = 1 / (n / src);
    const idx = new Int32Array(n), w0 = new Int32Array(n), w1 = new Int32Array(n);
    for (let d = 0; d < n; d++) {
      const pos = f((d + 0.5) * scale - 0.5);
      let i = Math.floor(pos), t = f(pos - i);
      if (clampEdges && i < 0) { i = 0; t = 0; }
      if (clampEdges && i >= src - 1) { i = src - 1; t = 0; }
      idx[d] = i;
      w0[d] = roundHalfEven(f(f(1 - t) * 2048));
      w1[d] = roundHalfEven(f(t * 2048));
    }
    return { idx, w0, w1 };
  };
  const xs = coefficients(tw, W, true), ys = coefficients(th, H, false);
  const clampRow = (y: number) => Math.min(Math.max(y, 0), H - 1);
  // the horizontal pass of one source row, in 11-bit fixed point
  const row = (y: number) => {
    const r = new Int32Array(tw * 3);
    for (let u = 0; u < tw; u++) {
      const x0 = xs.idx[u]!, x1 = Math.min(x0 + 1, W - 1);
      for (let k = 0; k < 3; k++) r[u * 3 + k] = data[(y * W + x0) * 3 + k]! * xs.w0[u]! + data[(y * W + x1) * 3 + k]! * xs.w1[u]!;
    }
    return r;
  };
  const out = new Uint8Array(tw * th * 3);
  for (let v = 0; v < th; v++) {
    const r0 = row(clampRow(ys.idx[v]!)), r1 = row(clampRow(ys.idx[v]! + 1));
    const b0 = ys.w0[v]!, b1 = ys.w1[v]!;
    for (let i = 0; i < tw * 3; i++) {
      const val = (Math.floor(((r0[i]! >> 4) * b0) / 65536) + Math.floor(((r1[i]! >> 4) * b1) / 65536) + 2) >> 2;
      out[v * tw * 3 + i] = Math.min(255, Math.max(0, val));
    }
  }
  return out;
}

/** cv::resize INTER_AREA for shrinking: each output pixel is the mean of the input area it covers. */
function resizeArea(img: RgbImage, tw: number, th: number): Uint8Array {
  const { width: W, height: H, data } = img;
  const out = new Uint8Array(tw * th * 3);
  // per output index: the input indices it covers and their weights (fractions of one input pixel)
  const spans = (n: number, src: number) => Array.from({ length: n }, (_, d) => {
    const a = (d * src) / n, b = ((d + 1) * src) / n;
    const w: [number, number][] = [];
    for (let i = Math.floor(a); i < Math.min(Math.ceil(b), src); i++) {
      const cover = Math.min(b, i + 1) - Math.max(a, i);
      if (cover > 1e-9) w.push([i, cover / (b - a)]);
    }
    return w;
  });
  const xs = spans(tw, W), ys = spans(th, H);
  for (let v = 0; v < th; v++) {
    for (let u = 0; u < tw; u++) {
      for (let k = 0; k < 3; k++) {
        let acc = 0;
        for (const [y, wy] of ys[v]!) for (const [x, wx] of xs[u]!) acc += data[(y * W + x) * 3 + k]! * wy * wx;
        out[(v * tw + u) * 3 + k] = Math.round(acc);
      }
    }
  }
  return out;
}

/** The model's input image and the letterbox padding [left, top, right, bottom] (fractions of the output). */
export interface EyeInput {
  image: RgbImage;
  padding: [number, number, number, number];
}

/**
 * ImageTransformationCalculator with output 64x64, scale_mode FIT and FLIP_HORIZONTALLY: the crop resized to
 * fit (INTER_AREA when shrinking, else INTER_LINEAR), centred on a zero border, mirrored left-right for the
 * right eye; with the LETTERBOX_PADDING it reports.
 */
export function eyeModelInput(crop: RgbImage, flip: boolean, size = IRIS_INPUT_SIZE): EyeInput {
  const scale = Math.fround(Math.min(Math.fround(size / crop.width), Math.fround(size / crop.height)));
  const tw = roundHalfAway(crop.width * scale), th = roundHalfAway(crop.height * scale);
  const resized = scale < 1 ? resizeArea(crop, tw, th) : resizeLinear(crop, tw, th);
  const top = Math.floor((size - th) / 2), left = Math.floor((size - tw) / 2);
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      const ox = flip ? size - 1 - (left + x) : left + x;
      out.set(resized.subarray((y * tw + x) * 3, (y * tw + x) * 3 + 3), ((top + y) * size + ox) * 3);
    }
  }
  // ComputeOutputLetterboxPadding: from the aspect ratios, in float32
  const inAspect = Math.fround(crop.width / crop.height), outAspect = 1;
  const padding: [number, number, number, number] = [0, 0, 0, 0];
  if (inAspect < outAspect) padding[0] = padding[2] = Math.fround((1 - inAspect / outAspect) / 2);
  else if (outAspect < inAspect) padding[1] = padding[3] = Math.fround((1 - outAspect / inAspect) / 2);
  return { image: { width: size, height: size, data: out }, padding };
}

/**
 * The 5 iris points from the model's raw iris output (x, y, z per point, in input pixels), normalized, unflipped
 * (x -> size - x for the right eye), letterbox padding removed and projected through the ROI to the image.
 */
export function decodeIris(raw: ArrayLike<number>, flip: boolean, padding: readonly number[], roi: NormRect, size = IRIS_INPUT_SIZE): Landmark[] {
  if (raw.length < IRIS_POINTS * 3) throw new Error(`iris output has ${raw.length} values, expected ${IRIS_POINTS} x 3`);
  const [l, t, r, b] = padding as [number, number, number, number];
  const norm = new Float32Array(IRIS_POINTS * 2);
  for (let i = 0; i < IRIS_POINTS; i++) {
    const x = (flip ? size - raw[3 * i]! : raw[3 * i]!) / size, y = raw[3 * i + 1]! / size;
    norm[2 * i] = (x - l) / (1 - l - r);
    norm[2 * i + 1] = (y - t) / (1 - t - b);
  }
  return projectLandmarks(norm, 2, IRIS_POINTS, roi);
}

/** Runs the iris model on one eye's model input; returns its raw iris output (15 values). */
export async function runIrisModel(model: ModelRef, input: RgbImage): Promise<Float32Array> {
  const session = await sessionOf(model);
  const n = input.width * input.height;
  const x = new Float32Array(n * 3);
  for (let i = 0; i < n * 3; i++) x[i] = input.data[i]! / 255;
  const outs = await runF32(session, x, [1, input.height, input.width, 3]);
  // iris_landmark.tflite: output_eyes_contours_and_brows [1,213] (71 x 3), output_iris [1,15] (5 x 3)
  const iris = outs.find((o) => o.data.length === IRIS_POINTS * 3);
  if (!iris) throw new Error(`iris model outputs ${outs.map((o) => `[${o.dims.join(',')}]`).join(', ')}, expected one of 15 values (5 iris points x 3)`);
  return iris.data;
}

/** One eye's 5 iris points (normalized to the image), or null when the eye is too small to crop. */
export async function eyeIris(img: RgbImage, face: readonly Landmark[], corners: readonly [number, number], flip: boolean, model: ModelRef): Promise<Landmark[] | null> {
  const roi = eyeRoi(face, corners, img.width, img.height);
  const crop = cropEye(img, roi);
  if (!crop) return null;
  const { image, padding } = eyeModelInput(crop, flip);
  return decodeIris(await runIrisModel(model, image), flip, padding, roi);
}

/**
 * The face's 468 landmarks followed by the left eye's (33/133) 5 iris points and the right eye's (362/263), as
 * MediaPipe numbers them (468 and 473 are the pupil centres); the face unchanged when either eye is too small
 * to crop.
 */
export async function withIris(img: RgbImage, face: readonly Landmark[], model: ModelRef): Promise<Landmark[]> {
  const left = await eyeIris(img, face, LEFT_EYE_CORNERS, false, model);
  const right = await eyeIris(img, face, RIGHT_EYE_CORNERS, true, model);
  if (!left || !right) return [...face];
  return [...face.slice(0, 468), ...left, ...right];
}
