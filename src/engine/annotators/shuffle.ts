// Content shuffle (controlnet_aux ContentShuffleDetector): the image is resampled through a smooth random flow
// field, two "noise disks" (a coarse uniform grid upsampled bicubically) scaled to the image's x and y ranges.
// The random grid comes from a seeded generator of ours, so a seed reproduces the hint; the resampling steps
// follow OpenCV 5 (cv2.resize INTER_CUBIC, cv2.remap INTER_LINEAR), measured equal on the oracle's fixtures.
import type { RgbImage } from '../pipeline/types.ts';
import { rgbImage } from './image.ts';

/** mulberry32: a small, fast, well-distributed 32-bit PRNG; floats in [0, 1). */
export function seededUniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** OpenCV's bicubic weights (A = -0.75), computed in float32 as cv::interpolateCubic does. */
function cubicCoeffs(x: number): [number, number, number, number] {
  const f = Math.fround;
  const A = -0.75;
  const x1 = f(x + 1), y = f(1 - x);
  const c0 = f(f(f(f(f(f(A * x1) - 5 * A) * x1) + 8 * A) * x1) - 4 * A);
  const c1 = f(f(f(f(f((A + 2) * x) - (A + 3)) * x) * x) + 1);
  const c2 = f(f(f(f(f((A + 2) * y) - (A + 3)) * y) * y) + 1);
  const c3 = f(f(f(1 - c0) - c1) - c2);
  return [c0, c1, c2, c3];
}

function cubicTaps(dst: number, src: number): { idx: Int32Array; w: Float64Array } {
  const scale = 1 / (dst / src); // OpenCV: scale_x = 1 / inv_scale_x, which can differ from src / dst in the last bit
  const idx = new Int32Array(dst * 4), w = new Float64Array(dst * 4);
  for (let d = 0; d < dst; d++) {
    const fx = Math.fround((d + 0.5) * scale - 0.5);
    const sx = Math.floor(fx);
    const c = cubicCoeffs(Math.fround(fx - sx));
    for (let k = 0; k < 4; k++) {
      idx[d * 4 + k] = Math.min(Math.max(sx + k - 1, 0), src - 1);
      w[d * 4 + k] = c[k]!;
    }
  }
  return { idx, w };
}

/** cv2.resize(src, (width, height), interpolation=INTER_CUBIC) of a float64 single-channel grid. */
export function resizeCubic(src: Float64Array, sw: number, sh: number, width: number, height: number): Float64Array {
  const tx = cubicTaps(width, sw), ty = cubicTaps(height, sh);
  const rows = new Float64Array(sh * width);
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += src[y * sw + tx.idx[x * 4 + k]!]! * tx.w[x * 4 + k]!;
      rows[y * width + x] = s;
    }
  }
  const out = new Float64Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += rows[ty.idx[y * 4 + k]! * width + x]! * ty.w[y * 4 + k]!;
      out[y * width + x] = s;
    }
  }
  return out;
}

/** Grid size of make_noise_disk for an image of h x w and feature size f. */
export function noiseGridSize(h: number, w: number, f: number): { gh: number; gw: number } {
  return { gh: Math.floor(h / f) + 2, gw: Math.floor(w / f) + 2 };
}

/** controlnet_aux util.make_noise_disk for one channel, from a given uniform grid: upsample, crop, min-max. */
export function noiseDisk(grid: Float64Array, h: number, w: number, f: number): Float64Array {
  const { gh, gw } = noiseGridSize(h, w, f);
  if (grid.length !== gh * gw) throw new Error(`noise grid must be ${gh}x${gw}`);
  const big = resizeCubic(grid, gw, gh, w + 2 * f, h + 2 * f);
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = big[(y + f) * (w + 2 * f) + x + f]!;
  let lo = Infinity;
  for (const v of out) lo = Math.min(lo, v);
  let hi = -Infinity;
  for (let i = 0; i < out.length; i++) hi = Math.max(hi, (out[i]! -= lo));
  for (let i = 0; i < out.length; i++) out[i]! /= hi;
  return out;
}

/**
 * cv2.remap(img, mapx, mapy, INTER_LINEAR) for uint8 RGB with float32 maps, as OpenCV 5 computes it: two
 * float32 lerps (along x, then y) rounded half to even (OpenCV 4 used 1/32-pixel fixed point instead).
 * Taps outside the image read 0 (BORDER_CONSTANT).
 */
export function remapLinear(img: RgbImage, mapX: Float32Array, mapY: Float32Array): RgbImage {
  const { width: w, height: h, data } = img;
  const out = new Uint8Array(w * h * 3);
  const px = (x: number, y: number, c: number) => (x < 0 || y < 0 || x >= w || y >= h ? 0 : data[(y * w + x) * 3 + c]!);
  const f = Math.fround;
  for (let i = 0; i < w * h; i++) {
    const sx = mapX[i]!, sy = mapY[i]!;
    const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = f(sx - x0), fy = f(sy - y0);
    for (let c = 0; c < 3; c++) {
      const a = px(x0, y0, c), b = px(x0 + 1, y0, c), d = px(x0, y0 + 1, c), e = px(x0 + 1, y0 + 1, c);
      const top = f(a + f((b - a) * fx)), bottom = f(d + f((e - d) * fx));
      const v = f(top + f(f(bottom - top) * fy));
      out[i * 3 + c] = Math.min(255, Math.max(0, cvRoundInt(v)));
    }
  }
  return rgbImage(w, h, out);
}

function cvRoundInt(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Shuffle with given uniform grids (for reproducing a reference run). */
export function shuffleWithGrids(img: RgbImage, gridX: Float64Array, gridY: Float64Array, f: number): RgbImage {
  const { width: w, height: h } = img;
  const nx = noiseDisk(gridX, h, w, f), ny = noiseDisk(gridY, h, w, f);
  const mapX = new Float32Array(w * h), mapY = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) {
    mapX[i] = nx[i]! * (w - 1);
    mapY[i] = ny[i]! * (h - 1);
  }
  return remapLinear(img, mapX, mapY);
}

/** The shuffle hint; f is the flow's feature size (256 at the annotator's 512 resolution, scaled with the image). */
export function shuffle(img: RgbImage, seed: number, f = Math.max(8, Math.round((256 * Math.min(img.width, img.height)) / 512))): RgbImage {
  const rand = seededUniform(seed);
  const { gh, gw } = noiseGridSize(img.height, img.width, f);
  const grid = () => Float64Array.from({ length: gh * gw }, rand);
  const gx = grid();
  return shuffleWithGrids(img, gx, grid(), f);
}
