// Scribble hint: thick binary strokes where the image has edges, as controlnet_aux's HED/PiDiNet detectors
// make them with scribble=True: ridge NMS of the soft edge map (threshold 127 after a sigma-3 blur), then a
// sigma-3 blur of that thin map and every pixel above 4 set to 255.
// Without the HED model, the thin map is the canny edge map instead (already one pixel wide, so no NMS).
import type { RgbImage } from '../pipeline/types.ts';
import { cannyEdges } from './canny.ts';
import { gaussianBlur, ridgeNms } from './filters.ts';
import { grayToRgb } from './image.ts';

/** Thickens a thin 0/255 edge map into strokes: GaussianBlur(sigma 3) on uint8, then > 4 → 255. */
export function thicken(thin: Uint8Array, width: number, height: number): Uint8Array {
  const blurred = gaussianBlur({ width, height, data: Float32Array.from(thin) }, 3, true);
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(blurred.data[i]!) > 4 ? 255 : 0;
  return out;
}

/** Scribble from a soft edge map (HED output, uint8 gray). */
export function scribbleFromSoftEdges(soft: Uint8Array, width: number, height: number): RgbImage {
  const thin = ridgeNms({ width, height, data: Float32Array.from(soft) }, 127, 3);
  return grayToRgb(thicken(thin, width, height), width, height);
}

/** Scribble from canny edges (100 / 200) when no HED model is installed. */
export function scribbleFromCanny(img: RgbImage): RgbImage {
  const thin = cannyEdges({ ...img, channels: 3 }, 100, 200);
  return grayToRgb(thicken(thin, img.width, img.height), img.width, img.height);
}
