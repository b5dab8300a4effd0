// Float image filters with OpenCV's conventions (kernel sizes, borders), used by scribble and shuffle.
import type { FloatMap } from './image.ts';

/** cv2.getGaussianKernel(ksize, sigma) for sigma > 0. */
export function gaussianKernel(ksize: number, sigma: number): Float64Array {
  const k = new Float64Array(ksize);
  const scale2X = -0.5 / (sigma * sigma);
  let sum = 0;
  for (let i = 0; i < ksize; i++) {
    const x = i - (ksize - 1) * 0.5;
    k[i] = Math.exp(scale2X * x * x);
    sum += k[i]!;
  }
  for (let i = 0; i < ksize; i++) k[i]! /= sum;
  return k;
}

/** BORDER_REFLECT_101 index (gfedcb|abcdefgh|gfedcba). */
function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

/**
 * cv2.GaussianBlur(x, (0, 0), sigma): the kernel size OpenCV derives from sigma (3 sigma each side for 8-bit
 * images, 4 sigma for float ones), separable, reflect-101 borders.
 */
export function gaussianBlur(src: FloatMap, sigma: number, forUint8: boolean): FloatMap {
  const ksize = (Math.round(sigma * (forUint8 ? 3 : 4) * 2 + 1) | 1);
  const k = gaussianKernel(ksize, sigma);
  const r = (ksize - 1) / 2;
  const { width: w, height: h } = src;
  // reflected source index of every tap, per column and per row
  const xs = new Int32Array(w * ksize), ys = new Int32Array(h * ksize);
  for (let x = 0; x < w; x++) for (let i = 0; i < ksize; i++) xs[x * ksize + i] = reflect101(x + i - r, w);
  for (let y = 0; y < h; y++) for (let i = 0; i < ksize; i++) ys[y * ksize + i] = reflect101(y + i - r, h) * w;
  const tmp = new Float64Array(w * h);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let i = 0; i < ksize; i++) s += k[i]! * src.data[row + xs[x * ksize + i]!]!;
      tmp[row + x] = s;
    }
  }
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let i = 0; i < ksize; i++) s += k[i]! * tmp[ys[y * ksize + i]! + x]!;
      out[y * w + x] = s;
    }
  }
  return { width: w, height: h, data: out };
}

/**
 * The scribble annotators' nms (controlnet_aux util.nms): blur, keep pixels that are a maximum along one of
 * the four 3-pixel directions, threshold. Returns 0/255 per pixel.
 */
export function ridgeNms(src: FloatMap, threshold: number, sigma: number): Uint8Array {
  const x = gaussianBlur(src, sigma, false);
  const { width: w, height: h, data } = x;
  const out = new Uint8Array(w * h);
  const at = (i: number, j: number) => (i < 0 || j < 0 || i >= w || j >= h ? -Infinity : data[j * w + i]!);
  const dirs: [number, number][] = [[1, 0], [0, 1], [1, 1], [1, -1]];
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      const v = data[j * w + i]!;
      const isMax = dirs.some(([dx, dy]) => Math.max(v, at(i - dx, j - dy), at(i + dx, j + dy)) === v);
      if (isMax && v > threshold) out[j * w + i] = 255;
    }
  }
  return out;
}
