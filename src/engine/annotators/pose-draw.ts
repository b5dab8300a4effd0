// Draws whole-body keypoints the way the ControlNet 1.1 openpose annotator does (controlnet_aux dwpose/util.py
// draw_bodypose / draw_handpose / draw_facepose, which control_v11p_sd15_openpose was trained on): limbs as
// filled ellipses in 18 colors, the canvas dimmed to 60%, joints as radius-4 dots; hand bones in a hue wheel
// with blue joints; face points as radius-3 white dots.
import type { RgbImage } from '../pipeline/types.ts';
import { color, ellipse2Poly, fillCircle, fillConvexPoly, line, type Color } from './draw.ts';
import { rgbImage } from './image.ts';

/** A keypoint in normalized image coordinates (0..1), or null when not detected / not confident. */
export type Keypoint = { x: number; y: number } | null;

export interface PosePerson {
  /** 18 OpenPose body points: nose, neck, r-shoulder, r-elbow, r-wrist, l-shoulder, ..., r-eye, l-eye, r-ear, l-ear */
  body: Keypoint[];
  /** 0..2 hands of 21 points each */
  hands: Keypoint[][];
  /** 68 face points, or none */
  face: Keypoint[];
}

const LIMBS: [number, number][] = [
  [2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10], [10, 11], [2, 12], [12, 13], [13, 14],
  [2, 1], [1, 15], [15, 17], [1, 16], [16, 18],
];

export const BODY_COLORS: Color[] = [
  [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0], [0, 255, 0],
  [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255], [0, 0, 255], [85, 0, 255],
  [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
];

const HAND_EDGES: [number, number][] = [
  [0, 1], [1, 2], [2, 3], [3, 4], [0, 5], [5, 6], [6, 7], [7, 8], [0, 9], [9, 10], [10, 11], [11, 12],
  [0, 13], [13, 14], [14, 15], [15, 16], [0, 17], [17, 18], [18, 19], [19, 20],
];

const EPS = 0.01;

/** matplotlib.colors.hsv_to_rgb([h, 1, 1]) * 255, with its exact float steps (colors round half to even). */
function hue(h: number): Color {
  const i = Math.trunc(h * 6), f = h * 6 - i;
  const q = 1 * (1 - 1 * f), t = 1 * (1 - 1 * (1 - f));
  const rgb = [[1, t, 0], [q, 1, 0], [0, 1, t], [0, q, 1], [t, 0, 1], [1, 0, q]][i % 6]!;
  return color(rgb[0]! * 255, rgb[1]! * 255, rgb[2]! * 255);
}

export function drawBody(canvas: RgbImage, people: PosePerson[]): void {
  const { width: W, height: H } = canvas;
  for (let i = 0; i < 17; i++) {
    for (const p of people) {
      const a = p.body[LIMBS[i]![0] - 1], b = p.body[LIMBS[i]![1] - 1];
      if (!a || !b) continue;
      const Y = [a.x * W, b.x * W], X = [a.y * H, b.y * H];
      const mX = (X[0]! + X[1]!) / 2, mY = (Y[0]! + Y[1]!) / 2;
      const length = Math.sqrt((X[0]! - X[1]!) ** 2 + (Y[0]! - Y[1]!) ** 2);
      const angle = (Math.atan2(X[0]! - X[1]!, Y[0]! - Y[1]!) * 180) / Math.PI;
      const poly = ellipse2Poly({ x: Math.trunc(mY), y: Math.trunc(mX) }, [Math.trunc(length / 2), 4], Math.trunc(angle), 0, 360, 1);
      fillConvexPoly(canvas, poly, BODY_COLORS[i]!);
    }
  }
  for (let k = 0; k < canvas.data.length; k++) canvas.data[k] = Math.trunc(canvas.data[k]! * 0.6);
  for (let i = 0; i < 18; i++) {
    for (const p of people) {
      const k = p.body[i];
      if (!k) continue;
      fillCircle(canvas, { x: Math.trunc(k.x * W), y: Math.trunc(k.y * H) }, 4, BODY_COLORS[i]!);
    }
  }
}

export function drawHands(canvas: RgbImage, hands: Keypoint[][]): void {
  const { width: W, height: H } = canvas;
  for (const peaks of hands) {
    HAND_EDGES.forEach(([e1, e2], ie) => {
      const a = peaks[e1], b = peaks[e2];
      if (!a || !b) return;
      const x1 = Math.trunc(a.x * W), y1 = Math.trunc(a.y * H), x2 = Math.trunc(b.x * W), y2 = Math.trunc(b.y * H);
      if (x1 > EPS && y1 > EPS && x2 > EPS && y2 > EPS) line(canvas, { x: x1, y: y1 }, { x: x2, y: y2 }, hue(ie / HAND_EDGES.length), 2);
    });
    for (const k of peaks) {
      if (!k) continue;
      const x = Math.trunc(k.x * W), y = Math.trunc(k.y * H);
      if (x > EPS && y > EPS) fillCircle(canvas, { x, y }, 4, [0, 0, 255]);
    }
  }
}

export function drawFace(canvas: RgbImage, faces: Keypoint[][]): void {
  const { width: W, height: H } = canvas;
  for (const lmks of faces) {
    for (const k of lmks) {
      if (!k) continue;
      const x = Math.trunc(k.x * W), y = Math.trunc(k.y * H);
      if (x > EPS && y > EPS) fillCircle(canvas, { x, y }, 3, [255, 255, 255]);
    }
  }
}

/** The openpose hint for these people on a black canvas (dwpose util.draw_pose). */
export function drawPose(people: PosePerson[], width: number, height: number): RgbImage {
  const canvas = rgbImage(width, height);
  drawBody(canvas, people);
  // all first hands, then all second hands: the annotator's vstack order
  drawHands(canvas, [0, 1].flatMap((k) => people.flatMap((p) => (p.hands[k] ? [p.hands[k]!] : []))));
  drawFace(canvas, people.map((p) => p.face));
  return canvas;
}
