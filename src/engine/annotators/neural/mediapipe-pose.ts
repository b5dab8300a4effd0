// MediaPipe Pose (BlazePose; google-ai-edge/mediapipe, Apache-2.0) as the body-only stand-in for the openpose
// annotator when DWPose is not installed: pose_detection finds each person, pose_landmark_full gives 33 body
// landmarks per person, which are picked down to COCO-17 and mapped to OpenPose-18 the way the DWPose path maps
// COCO (dwpose.ts cocoToOpenposeBody). Each step follows the MediaPipe graph named in its comment
// (mediapipe/modules/pose_detection/pose_detection_cpu.pbtxt, pose_landmark/pose_detection_to_roi.pbtxt,
// pose_landmark/pose_landmark_by_roi_cpu.pbtxt). Differences from MediaPipe's own solution: every detected person
// gets a landmark run (MediaPipe Pose tracks one), the heatmap refinement of the landmarks
// (RefineLandmarksFromHeatmapCalculator) and the temporal smoothing are not done, and crops are sampled with
// float bilinear interpolation.
import type { RgbImage } from '../../pipeline/types.ts';
import type { PosePerson } from '../pose-draw.ts';
import { cocoToOpenposeBody } from './dwpose.ts';
import {
  cropRoi, decodeDetections, inputLayout, letterboxRoi, normalizeRadians, projectDetection, projectLandmarks, sessionOf,
  ssdAnchors, toPixelRoi, toTensor, weightedNms, type FaceDetection, type ModelRef, type NormRect, type SsdAnchorOptions,
} from './face.ts';
import { runF32 } from './session.ts';

/** pose_detection_cpu.pbtxt's SsdAnchorsCalculatorOptions (num_layers 5): 28²·2 + 14²·2 + 7²·6 = 2254 anchors. */
export const POSE_ANCHORS: SsdAnchorOptions = {
  inputWidth: 224,
  inputHeight: 224,
  minScale: 0.1484375,
  maxScale: 0.75,
  offsetX: 0.5,
  offsetY: 0.5,
  strides: [8, 16, 32, 32, 32],
  aspectRatios: [1.0],
  interpolatedScaleAspectRatio: 1.0,
  fixedAnchorSize: true,
};

/** How many people get a landmark run at most. */
export const MAX_POSES = 10;

/** BlazePose-33 indices of COCO-17's points (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles). */
export const BLAZEPOSE_TO_COCO = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28];

/** MediaPipe draws a landmark when its visibility is at least this (drawing_utils' visibility threshold). */
export const MIN_VISIBILITY = 0.5;

/**
 * People found by pose_detection (TensorsToDetections: 12 coords, 4 keypoints, sigmoid scores clipped at 100,
 * threshold 0.5; weighted NMS at IoU 0.3), in normalized image coordinates, best first. Keypoint 0 is the hip
 * centre, 1 a point above the head that sets the body's scale and rotation.
 */
export async function detectPersons(img: RgbImage, detector: ModelRef, maxPoses = MAX_POSES): Promise<FaceDetection[]> {
  const session = await sessionOf(detector);
  const { size, nhwc } = inputLayout(session, 224);
  const roi = letterboxRoi(img.width, img.height);
  const x = toTensor(cropRoi(img, roi, size, 'zero'), size, -1, 1, nhwc);
  const outs = await runF32(session, x, nhwc ? [1, size, size, 3] : [1, 3, size, size]);
  const anchors = ssdAnchors({ ...POSE_ANCHORS, inputWidth: size, inputHeight: size });
  const reg = outs.find((o) => o.data.length === anchors.length * 12), cls = outs.find((o) => o.data.length === anchors.length);
  if (!reg || !cls) throw new Error(`pose detector outputs ${outs.map((o) => `[${o.dims.join(',')}]`).join(', ')}, expected [1,${anchors.length},12] and [1,${anchors.length},1]`);
  const dets = weightedNms(decodeDetections(reg.data, cls.data, anchors, 0.5, size, 4));
  return dets.slice(0, maxPoses).map((d) => projectDetection(d, roi, img.width, img.height));
}

/**
 * pose_detection_to_roi.pbtxt: AlignmentPointsRectsCalculator (centre at keypoint 0, square of side twice the
 * distance to keypoint 1, rotation so that keypoint 1 is straight above keypoint 0: target angle 90°), then
 * RectTransformationCalculator (square_long, scale 1.25).
 */
export function poseRoi(d: FaceDetection, width: number, height: number): NormRect {
  const [x0, y0] = d.keypoints[0]!, [x1, y1] = d.keypoints[1]!;
  const cx = x0 * width, cy = y0 * height, sx = x1 * width, sy = y1 * height;
  const side = 2 * Math.hypot(sx - cx, sy - cy);
  const rotation = normalizeRadians(Math.PI / 2 - Math.atan2(-(sy - cy), sx - cx));
  return { cx: x0, cy: y0, w: (side * 1.25) / width, h: (side * 1.25) / height, rotation };
}

/** 33 body landmarks with visibility (sigmoid of the raw value), in normalized image coordinates, or null. */
export interface BodyLandmark {
  x: number;
  y: number;
  visibility: number;
}

/**
 * pose_landmark_by_roi_cpu.pbtxt: the ROI cropped to the model's input (RGB 0..1, edge pixels replicated),
 * TensorsToLandmarks (39 landmarks of x, y, z, visibility, presence in input pixels; the first 33 are the body),
 * LandmarkProjection back to the image. Null when the pose-presence output is under 0.5.
 */
export async function poseLandmarks(img: RgbImage, model: ModelRef, roi: NormRect): Promise<BodyLandmark[] | null> {
  const session = await sessionOf(model);
  const { size, nhwc } = inputLayout(session, 256);
  const crop = cropRoi(img, toPixelRoi(roi, img.width, img.height), size, 'replicate');
  const outs = await runF32(session, toTensor(crop, size, 0, 1, nhwc), nhwc ? [1, size, size, 3] : [1, 3, size, size]);
  const raw = outs.find((o) => o.data.length === 39 * 5), flag = outs.find((o) => o.data.length === 1);
  if (!raw || !flag) throw new Error('pose landmark model outputs lack the [1,195] landmarks or the [1,1] pose flag');
  if (flag.data[0]! < 0.5) return null;
  const norm = new Float32Array(33 * 2);
  for (let i = 0; i < 33; i++) { norm[2 * i] = raw.data[5 * i]! / size; norm[2 * i + 1] = raw.data[5 * i + 1]! / size; }
  const pts = projectLandmarks(norm, 2, 33, roi);
  return pts.map((p, i) => ({ x: p.x, y: p.y, visibility: 1 / (1 + Math.exp(-raw.data[5 * i + 3]!)) }));
}

/** BlazePose-33 → the OpenPose-18 body of one person (no hands, no face): COCO-17 pick, then DWPose's mapping. */
export function blazeposeToPerson(lm: BodyLandmark[], width: number, height: number): PosePerson {
  const xy = BLAZEPOSE_TO_COCO.map((i) => [lm[i]!.x * width, lm[i]!.y * height] as [number, number]);
  const scores = BLAZEPOSE_TO_COCO.map((i) => lm[i]!.visibility);
  return { body: cocoToOpenposeBody(xy, scores, width, height, MIN_VISIBILITY), hands: [], face: [] };
}

/** Every detected person's body pose: detector, then the landmark model on each person's rotated ROI. */
export async function detectBodies(img: RgbImage, detector: ModelRef, landmarkModel: ModelRef, maxPoses = MAX_POSES): Promise<PosePerson[]> {
  const people: PosePerson[] = [];
  for (const d of await detectPersons(img, detector, maxPoses)) {
    const lm = await poseLandmarks(img, landmarkModel, poseRoi(d, img.width, img.height));
    if (lm) people.push(blazeposeToPerson(lm, img.width, img.height));
  }
  return people;
}
