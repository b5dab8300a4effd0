// Image ↔ tensor conversions, matching diffusers' VaeImageProcessor where the pipeline relies on it.
import sharp from 'sharp';
import type { RgbImage } from './types.ts';

// One resize for the whole engine (sharp, Lanczos3, exact size).
export { resizeRgb } from '../annotators/image.ts';
import { maskBits } from '../annotators/inpaint.ts';

/** HWC uint8 → CHW float32: [0,1] (control hints, do_normalize=False) or [-1,1] (VAE input). */
export function toChw(img: RgbImage, range: '0,1' | '-1,1'): Float32Array {
  const { width: w, height: h, data } = img;
  const out = new Float32Array(3 * w * h);
  const plane = w * h;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      // diffusers: pil → numpy (x / 255) in float32, then 2x - 1 when normalizing
      const v = Math.fround(data[i * 3 + c]! / 255);
      out[c * plane + i] = range === '0,1' ? v : Math.fround(Math.fround(2 * v) - 1);
    }
  }
  return out;
}

/**
 * Mask as diffusers' mask processor: PIL "L" luma / 255 binarized at 0.5 → 1 = repaint. The same pixels as the
 * inpaint hint's mask (luma / 255 > 0.5): an integer luma never lands on 0.5 exactly.
 */
export function binaryMask(img: RgbImage): Float32Array {
  return Float32Array.from(maskBits(img));
}

/** Nearest downsampling of a [h,w] mask to [h/f, w/f] the way F.interpolate(size=...) (mode nearest) picks. */
export function maskToLatent(mask: Float32Array, w: number, h: number, lw: number, lh: number): Float32Array {
  const out = new Float32Array(lw * lh);
  for (let y = 0; y < lh; y++) {
    const sy = Math.min(h - 1, Math.floor(y * (h / lh)));
    for (let x = 0; x < lw; x++) out[y * lw + x] = mask[sy * w + Math.min(w - 1, Math.floor(x * (w / lw)))]!;
  }
  return out;
}

/** Decoded VAE output [B,3,H,W] in ~[-1,1] → one HWC uint8 image per batch entry, as numpy_to_pil does. */
export function decodedToRgb(sample: Float32Array, batch: number, width: number, height: number): RgbImage[] {
  const plane = width * height;
  const images: RgbImage[] = [];
  for (let b = 0; b < batch; b++) {
    const data = new Uint8Array(plane * 3);
    const base = b * 3 * plane;
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) {
        // (x / 2 + 0.5).clamp(0, 1), then (x * 255).round() — float32 steps as torch/numpy do them
        const x = Math.min(1, Math.max(0, Math.fround(Math.fround(sample[base + c * plane + i]! / 2) + 0.5)));
        data[i * 3 + c] = roundHalfEven(Math.fround(x * 255));
      }
    }
    images.push({ width, height, data });
  }
  return images;
}

/** numpy's round(): halves go to the even neighbour. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export async function encodePng(img: RgbImage): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
}
