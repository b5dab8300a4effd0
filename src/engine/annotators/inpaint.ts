// Inpaint hint, as diffusers' make_inpaint_condition builds it for control_v11p_sd15_inpaint: the init image
// in [0, 1] with every masked pixel (mask luma > 0.5, white = repaint) set to -1 in all three channels.
import type { RgbImage } from '../pipeline/types.ts';
import { rgbImage } from './image.ts';

/** PIL's convert('L'): (R*299 + G*587 + B*114) / 1000 in 16-bit fixed point, rounded. */
function pilLuma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

function assertSameSize(init: RgbImage, mask: RgbImage): void {
  if (init.width !== mask.width || init.height !== mask.height) {
    throw new Error(`inpaint mask is ${mask.width}x${mask.height} but the image is ${init.width}x${init.height}: resize both to the output size first`);
  }
}

/** True per pixel where the mask asks to repaint. */
export function maskBits(mask: RgbImage): Uint8Array {
  const n = mask.width * mask.height;
  const out = new Uint8Array(n);
  const d = mask.data;
  for (let i = 0; i < n; i++) out[i] = pilLuma(d[3 * i]!, d[3 * i + 1]!, d[3 * i + 2]!) / 255 > 0.5 ? 1 : 0;
  return out;
}

/**
 * The ControlNet input for inpaint: CHW float32 (3 x H x W), values in [0, 1], or -1 at masked pixels.
 * The pipeline feeds it where other types feed hint/255 (it is already the conditioning tensor for batch 1).
 */
export function inpaintCondition(init: RgbImage, mask: RgbImage): Float32Array {
  assertSameSize(init, mask);
  const n = init.width * init.height;
  const bits = maskBits(mask);
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) out[c * n + i] = bits[i] ? -1 : init.data[3 * i + c]! / 255;
  }
  return out;
}

/** A viewable stand-in of the condition (masked pixels black) for previews; the pipeline uses inpaintCondition. */
export function inpaintPreview(init: RgbImage, mask: RgbImage): RgbImage {
  assertSameSize(init, mask);
  const bits = maskBits(mask);
  const out = Uint8Array.from(init.data);
  for (let i = 0; i < bits.length; i++) if (bits[i]) out.fill(0, 3 * i, 3 * i + 3);
  return rgbImage(init.width, init.height, out);
}
