// MediaPipe face landmarks from an ONNX conversion of face_landmark (468 points, or 478 with the iris
// refinement). Limitation: there is no face detector stage: the whole image, letterboxed to the model's
// square input, is taken as the face crop, which fits portrait-style inputs (one face filling the frame),
// the common use of the face ControlNet; small or several faces are not found.
import type { RgbImage } from '../../pipeline/types.ts';
import type { Landmark } from '../face-draw.ts';
import { resizeRgb } from '../image.ts';
import sharp from 'sharp';
import { annotatorSession, runF32 } from './session.ts';

/** Pads the image to a centred square (black), returning the square and the offsets of the image in it. */
async function letterbox(img: RgbImage, size: number): Promise<{ data: Uint8Array; side: number; ox: number; oy: number }> {
  const side = Math.max(img.width, img.height);
  const ox = Math.floor((side - img.width) / 2), oy = Math.floor((side - img.height) / 2);
  const sq = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .extend({ left: ox, right: side - img.width - ox, top: oy, bottom: side - img.height - oy, background: { r: 0, g: 0, b: 0 } })
    .raw()
    .toBuffer();
  const r = await resizeRgb({ width: side, height: side, data: new Uint8Array(sq.buffer, sq.byteOffset, sq.byteLength) }, size, size);
  return { data: r.data, side, ox, oy };
}

export async function faceLandmarks(img: RgbImage, modelPath: string): Promise<Landmark[][]> {
  const session = await annotatorSession(modelPath);
  const meta = session.inputMetadata[0];
  const shape = (meta && 'shape' in meta ? meta.shape : []) as (number | string)[];
  const nhwc = shape[3] === 3;
  const size = typeof shape[2] === 'number' && !nhwc ? shape[2] : typeof shape[1] === 'number' ? shape[1] : 192;
  const { data, side, ox, oy } = await letterbox(img, size);
  const n = size * size;
  const x = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) x[nhwc ? i * 3 + c : c * n + i] = data[i * 3 + c]! / 255;
  }
  const outs = await runF32(session, x, nhwc ? [1, size, size, 3] : [1, 3, size, size]);
  const pts = outs[0]!.data;
  if (pts.length < 468 * 3) throw new Error(`face landmark model output has ${pts.length} values, expected 468 x 3 or more`);
  // A second output, when present, is the face-presence logit.
  if (outs[1] && outs[1].data.length === 1 && 1 / (1 + Math.exp(-outs[1].data[0]!)) < 0.5) return [];
  const count = Math.floor(pts.length / 3);
  const k = side / size;
  const face: Landmark[] = [];
  for (let i = 0; i < count; i++) face.push({ x: (pts[3 * i]! * k - ox) / img.width, y: (pts[3 * i + 1]! * k - oy) / img.height });
  return [face];
}

