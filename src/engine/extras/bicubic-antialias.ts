// The antialiased bicubic resize of 8-bit RGB images that transformers 5's CLIPImageProcessor (torchvision backend:
// torchvision.transforms.v2.functional.resize, BICUBIC, antialias=True, on uint8) feeds diffusers' safety checker,
// byte for byte. torchvision resizes uint8 bicubic natively with ATen's kernel, a port of Pillow-SIMD's resampler
// (aten/src/ATen/native/cpu/UpSampleKernel.cpp, _compute_index_ranges_int16_weights): a separable convolution,
// the horizontal pass first (over the rows the vertical pass reads), then the vertical one, each rounding and
// clipping to 8 bits; Keys' cubic kernel with a = -0.5 and support 2, widened by the scale when reducing; each
// output pixel's weights normalised to sum 1, then rounded to int16 at the largest precision (< 22 bits) at which
// the axis's largest weight still fits. Pillow itself uses 22 bits throughout, so its bytes differ by one level in
// about 1% of pixels.
import type { RgbImage } from '../pipeline/types.ts';

/** Keys' cubic convolution kernel with a = -0.5 (ATen's antialiased bicubic, as Pillow's). */
function cubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** One axis's taps: each output index's first input index and tap count, int16 weights [out × ksize], their precision. */
interface Taps {
  first: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  ksize: number;
  precision: number;
}

/** The taps of an axis of `inSize` pixels resized to `outSize` (ATen's _compute_index_ranges_int16_weights). */
function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const support = scale >= 1 ? 2 * scale : 2;
  const invScale = scale >= 1 ? 1 / scale : 1;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize), count = new Int32Array(outSize);
  const w = new Float64Array(outSize * ksize);
  let wMax = 0;
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    // C++'s static_cast<int64_t> truncates toward zero
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const v = cubic((j + xmin - center + 0.5) * invScale);
      w[i * ksize + j] = v;
      total += v;
    }
    if (total !== 0) {
      for (let j = 0; j < xsize; j++) {
        w[i * ksize + j]! /= total;
        wMax = Math.max(wMax, w[i * ksize + j]!);
      }
    }
    first[i] = xmin;
    count[i] = xsize;
  }
  let precision = 0;
  for (; precision < 22; precision++) {
    if (Math.trunc(0.5 + wMax * 2 ** (precision + 1)) >= 1 << 15) break;
  }
  const weights = new Int32Array(outSize * ksize);
  for (let k = 0; k < w.length; k++) {
    const v = w[k]! * 2 ** precision;
    weights[k] = v < 0 ? Math.trunc(-0.5 + v) : Math.trunc(0.5 + v);
  }
  return { first, count, weights, ksize, precision };
}

/** A fixed-point sum (its rounding half included) to 0–255: an arithmetic shift, then saturation. */
function clip8(sum: number, precision: number): number {
  const v = Math.floor(sum / 2 ** precision);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resizes an RGB image ([H,W,3] uint8) to width × height as torchvision's uint8 antialiased bicubic resize does,
 * byte for byte. The integer sums (8-bit pixels × 16-bit weights) are exact in float64.
 */
export function resizeBicubicAntialias(img: RgbImage, width: number, height: number): RgbImage {
  const { width: W, height: H, data } = img;
  if (width === W && height === H) return { width, height, data: new Uint8Array(data) };
  const needH = width !== W, needV = height !== H;
  const vt = needV ? taps(H, height) : undefined;
  // the horizontal pass covers only the rows the vertical pass reads
  const yFirst = vt ? vt.first[0]! : 0;
  const yEnd = vt ? vt.first[height - 1]! + vt.count[height - 1]! : H;
  let mid: Uint8Array = data;
  if (needH) {
    const ht = taps(W, width);
    const half = 2 ** (ht.precision - 1);
    mid = new Uint8Array(width * (yEnd - yFirst) * 3);
    for (let y = yFirst; y < yEnd; y++) {
      const src = y * W * 3, dst = (y - yFirst) * width * 3;
      for (let xx = 0; xx < width; xx++) {
        const x0 = ht.first[xx]!, n = ht.count[xx]!, kb = xx * ht.ksize;
        let r = half, g = half, b = half;
        for (let x = 0; x < n; x++) {
          const w = ht.weights[kb + x]!, p = src + (x0 + x) * 3;
          r += data[p]! * w; g += data[p + 1]! * w; b += data[p + 2]! * w;
        }
        const o = dst + xx * 3;
        mid[o] = clip8(r, ht.precision); mid[o + 1] = clip8(g, ht.precision); mid[o + 2] = clip8(b, ht.precision);
      }
    }
  }
  if (!vt) return { width, height, data: mid };
  const rowShift = needH ? yFirst : 0;
  const half = 2 ** (vt.precision - 1);
  const out = new Uint8Array(width * height * 3);
  for (let yy = 0; yy < height; yy++) {
    const y0 = vt.first[yy]! - rowShift, n = vt.count[yy]!, kb = yy * vt.ksize;
    for (let xx = 0; xx < width; xx++) {
      let r = half, g = half, b = half;
      for (let y = 0; y < n; y++) {
        const w = vt.weights[kb + y]!, p = ((y0 + y) * width + xx) * 3;
        r += mid[p]! * w; g += mid[p + 1]! * w; b += mid[p + 2]! * w;
      }
      const o = (yy * width + xx) * 3;
      out[o] = clip8(r, vt.precision); out[o + 1] = clip8(g, vt.precision); out[o + 2] = clip8(b, vt.precision);
    }
  }
  return { width, height, data: out };
}
