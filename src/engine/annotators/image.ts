// Small helpers on decoded images (HWC uint8 RGB) and float maps shared by the annotators.
import sharp from 'sharp';
import type { RgbImage } from '../pipeline/types.ts';

/** A single-channel float map, row-major. */
export interface FloatMap {
  width: number;
  height: number;
  data: Float32Array;
}

export function rgbImage(width: number, height: number, data: Uint8Array = new Uint8Array(width * height * 3)): RgbImage {
  if (data.length !== width * height * 3) throw new Error(`RGB image ${width}x${height} needs ${width * height * 3} bytes, got ${data.length}`);
  return { width, height, data };
}

/** Resizes with sharp (Lanczos3 down/up, exact size, no cropping); returns the input when the size already fits. */
export async function resizeRgb(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (img.width === width && img.height === height) return img;
  const { data } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return rgbImage(width, height, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** One gray channel repeated three times (the HWC3 of the annotators). */
export function grayToRgb(gray: ArrayLike<number>, width: number, height: number): RgbImage {
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const v = gray[i]!;
    out[3 * i] = v;
    out[3 * i + 1] = v;
    out[3 * i + 2] = v;
  }
  return rgbImage(width, height, out);
}

/** ITU-R BT.601 luma, rounded as OpenCV's cvtColor RGB2GRAY does (fixed point, 15 bits). */
export function luma(img: RgbImage): Uint8Array {
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  const d = img.data;
  for (let i = 0; i < n; i++) out[i] = (d[3 * i]! * 9798 + d[3 * i + 1]! * 19235 + d[3 * i + 2]! * 3735 + 16384) >> 15;
  return out;
}

/** float → uint8 the numpy way: (x * 255).clip(0, 255).astype(uint8) truncates toward zero. */
export function toByte(x: number): number {
  const v = x * 255;
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
}

/**
 * Bilinear resize of a float map with OpenCV's INTER_LINEAR geometry (pixel centres aligned, edges replicated),
 * which is also torch's interpolate(mode='bilinear', align_corners=False) when scaling up.
 */
export function resizeBilinear(src: FloatMap, width: number, height: number): FloatMap {
  if (src.width === width && src.height === height) return src;
  const out = new Float32Array(width * height);
  const sx = src.width / width;
  const sy = src.height / height;
  const xi0 = new Int32Array(width), xi1 = new Int32Array(width), xw = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    let fx = (x + 0.5) * sx - 0.5;
    if (fx < 0) fx = 0;
    const i = Math.min(Math.floor(fx), src.width - 1);
    xi0[x] = i;
    xi1[x] = Math.min(i + 1, src.width - 1);
    xw[x] = fx - i;
  }
  for (let y = 0; y < height; y++) {
    let fy = (y + 0.5) * sy - 0.5;
    if (fy < 0) fy = 0;
    const j = Math.min(Math.floor(fy), src.height - 1);
    const j1 = Math.min(j + 1, src.height - 1);
    const wy = fy - j;
    const r0 = j * src.width, r1 = j1 * src.width;
    for (let x = 0; x < width; x++) {
      const a = src.data[r0 + xi0[x]!]! * (1 - xw[x]!) + src.data[r0 + xi1[x]!]! * xw[x]!;
      const b = src.data[r1 + xi0[x]!]! * (1 - xw[x]!) + src.data[r1 + xi1[x]!]! * xw[x]!;
      out[y * width + x] = a * (1 - wy) + b * wy;
    }
  }
  return { width, height, data: out };
}

/** HWC uint8 → NCHW float32 with per-channel (v/255 - mean) / std; `bgr` swaps channel order first. */
export function toTensorData(img: RgbImage, mean: readonly number[], std: readonly number[], opts: { scale?: number; bgr?: boolean } = {}): Float32Array {
  const { width: w, height: h, data } = img;
  const scale = opts.scale ?? 1 / 255;
  const out = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++) {
    const srcC = opts.bgr ? 2 - c : c;
    for (let i = 0; i < w * h; i++) out[c * w * h + i] = (data[3 * i + srcC]! * scale - mean[c]!) / std[c]!;
  }
  return out;
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
