// Draws MediaPipe face-mesh landmarks as the ControlNet face model (CrucibleAI/ControlNetMediaPipeFace)
// expects, following controlnet_aux mediapipe_face/mediapipe_face_common.py: contour lines 2 px wide in a
// color per part (oval, eyes, eyebrows, lips), then 4x4 squares on the two pupils (iris landmarks 468, 473).
// That code draws in BGR and flips at the end; the colors below are already flipped to RGB.
import type { RgbImage } from '../pipeline/types.ts';
import { line, type Color, type Point } from './draw.ts';
import { FACE_OVAL, LEFT_EYE, LEFT_EYEBROW, LIPS, RIGHT_EYE, RIGHT_EYEBROW } from './face-mesh.ts';
import { rgbImage } from './image.ts';

const bgr = (b: number, g: number, r: number): Color => [r, g, b];

const PARTS: [readonly [number, number][], Color][] = [
  [FACE_OVAL, bgr(10, 200, 10)],
  [LEFT_EYE, bgr(180, 200, 10)],
  [LEFT_EYEBROW, bgr(180, 220, 10)],
  [RIGHT_EYE, bgr(10, 200, 180)],
  [RIGHT_EYEBROW, bgr(10, 220, 180)],
  [LIPS, bgr(10, 180, 10)],
];
// iris_landmark_spec: 468 right_iris_draw, 473 left_iris_draw (the subject's sides), drawn with halfwidth 2
const PUPILS: [number, Color][] = [[468, bgr(10, 200, 250)], [473, bgr(250, 200, 10)]];
const PUPIL_HALFWIDTH = 2;

/** Normalized landmark (x, y in 0..1 of the image). */
export interface Landmark {
  x: number;
  y: number;
}

/** Faces smaller than this many pixels (the shorter side of their landmark box) are not drawn. */
export const MIN_FACE_PIXELS = 64;

/** mediapipe drawing_utils._normalized_to_pixel_coordinates: null outside [0, 1]. */
function toPixel(l: Landmark, w: number, h: number): Point | null {
  const ok = (v: number) => v >= 0 && v <= 1;
  if (!ok(l.x) || !ok(l.y)) return null;
  return { x: Math.min(Math.floor(l.x * w), w - 1), y: Math.min(Math.floor(l.y * h), h - 1) };
}

export function faceIsLargeEnough(face: Landmark[], w: number, h: number): boolean {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const l of face) {
    x0 = Math.min(x0, l.x); y0 = Math.min(y0, l.y); x1 = Math.max(x1, l.x); y1 = Math.max(y1, l.y);
  }
  return Math.min((x1 - x0) * w, (y1 - y0) * h) >= MIN_FACE_PIXELS;
}

export function drawFaceMesh(canvas: RgbImage, face: Landmark[]): void {
  const { width: w, height: h } = canvas;
  const px = face.map((l) => toPixel(l, w, h));
  for (const [edges, c] of PARTS) {
    for (const [a, b] of edges) {
      const p = px[a], q = px[b];
      if (p && q) line(canvas, p, q, c, 2);
    }
  }
  // draw_pupils: image[y-2:y+2, x-2:x+2] = color, with numpy's slice rules (a negative start counts from the end,
  // so a pupil less than 2 px from the top or left edge draws nothing in that direction's rows or columns)
  const span = (p: number, n: number): [number, number] => {
    const start = p - PUPIL_HALFWIDTH < 0 ? Math.max(0, p - PUPIL_HALFWIDTH + n) : p - PUPIL_HALFWIDTH;
    return [start, Math.min(n, p + PUPIL_HALFWIDTH)];
  };
  for (const [idx, c] of PUPILS) {
    const l = face[idx];
    if (!l || l.x >= 1 || l.x < 0 || l.y >= 1 || l.y < 0) continue;
    const [y0, y1] = span(Math.trunc(h * l.y), h), [x0, x1] = span(Math.trunc(w * l.x), w);
    for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) canvas.data.set(c, (yy * w + xx) * 3);
  }
}

/** The face hint for these faces (478 landmarks each when iris points are present, else 468). */
export function drawFaces(faces: Landmark[][], width: number, height: number): RgbImage {
  const canvas = rgbImage(width, height);
  for (const f of faces) if (faceIsLargeEnough(f, width, height)) drawFaceMesh(canvas, f);
  return canvas;
}
