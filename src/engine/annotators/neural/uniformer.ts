// The segmentation annotator of ControlNet 1.1 ("seg_ufade20k", UniformerDetector of lllyasviel/ControlNet-v1-1-nightly
// annotator/uniformer) around the UniFormer + UperNet network built from upernet_global_small.pth
// (models/annotators/uniformer.ts): mmseg's test pipeline for exp/upernet_global_small/config.py, then the argmax
// painted with the ADE20k palette as show_result_pyplot(..., get_palette('ade'), opacity=1) does.
//   1. Resize(keep_ratio=True) into img_scale (2048, 512): one factor min(2048 / long side, 512 / short side), sides
//      int(side * factor + 0.5), cv2.resize INTER_LINEAR on the uint8 image (mmcv.imrescale) — the identity when the
//      short side is already 512 and the long side at most 2048 (ControlNet's detect resolution 512).
//   2. Normalize(mean [123.675, 116.28, 103.53], std [58.395, 57.12, 57.375], to_rgb=True) in float32, as
//      mmcv.imnormalize computes it: (v - mean) * (1 / std). The detector hands mmseg an RGB array (gradio's), which
//      LoadImage keeps as is and to_rgb then swaps as if it were BGR: the network sees B, G, R in channels 0, 1, 2,
//      normalised with the R, G, B statistics. Kept as the annotator does it (control_v11p_sd15_seg's hints came
//      from this code).
//   3. Whole-image inference; the logits resized to the network input's size and then to the image's size,
//      softmax, argmax (the graph's labels output: first maximum on ties).
//   4. Each class id painted with its ADE20k colour (RGB).
import type { RgbImage } from '../../pipeline/types.ts';
import { cvRound } from '../draw.ts';
import { rgbImage } from '../image.ts';
import { paletteImage } from './post.ts';
import { ADE20K_PALETTE } from './ade20k.ts';
import { ort } from '../../onnx/session.ts';
import { sessionOf, type ModelRef } from './session.ts';

/** mmseg's test img_scale for ADE20k (long side, short side bounds). */
const IMG_SCALE = [2048, 512] as const;
/** Normalize's mean and std, applied to channels 0, 1, 2 after to_rgb's swap. */
const MEAN = [123.675, 116.28, 103.53] as const;
const STD = [58.395, 57.12, 57.375] as const;

/**
 * mmcv.rescale_size for a (long, short) bound: the largest size that keeps the aspect ratio within the bound,
 * each side int(side * factor + 0.5). Sizes in pixels.
 */
export function mmsegRescaleSize(width: number, height: number, scale: readonly [number, number] = IMG_SCALE): { w: number; h: number } {
  const long = Math.max(...scale), short = Math.min(...scale);
  const factor = Math.min(long / Math.max(height, width), short / Math.min(height, width));
  return { w: Math.trunc(width * factor + 0.5), h: Math.trunc(height * factor + 0.5) };
}

/**
 * OpenCV's fixed-point taps of INTER_LINEAR along one axis: source indices (edge-clamped) and weights summing to
 * 2048. Along x a tap past the edge gets weight 2048 on the edge pixel; along y OpenCV keeps the unclamped weights
 * and clamps only the rows (both then read the edge row, but the vertical pass truncates each product apart).
 */
function linearTaps(src: number, dst: number, clampWeights: boolean): { i0: Int32Array; i1: Int32Array; a0: Int32Array; a1: Int32Array } {
  const scale = 1 / (dst / src); // OpenCV: scale_x = 1. / inv_scale_x, inv_scale_x = dsize / ssize (doubles)
  const i0 = new Int32Array(dst), i1 = new Int32Array(dst), a0 = new Int32Array(dst), a1 = new Int32Array(dst);
  for (let d = 0; d < dst; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (clampWeights && s < 0) { f = 0; s = 0; }
    if (clampWeights && s >= src - 1) { f = 0; s = src - 1; }
    i0[d] = Math.min(Math.max(s, 0), src - 1);
    i1[d] = Math.min(Math.max(s + 1, 0), src - 1);
    a0[d] = cvRound(Math.fround(1 - f) * 2048);
    a1[d] = cvRound(f * 2048);
  }
  return { i0, i1, a0, a1 };
}

/**
 * cv2.resize(img, (width, height), interpolation=INTER_LINEAR) of a uint8 RGB image, bit for bit as OpenCV computes
 * it: 11-bit fixed-point weights, the horizontal pass in integers, the vertical pass
 * ((b0 * (S0 >> 4)) >> 16) + ((b1 * (S1 >> 4)) >> 16) + 2 >> 2; an exact 2x reduction on both axes is INTER_AREA's
 * rounded 2x2 mean (OpenCV switches to it there).
 */
export function cvResizeLinear(img: RgbImage, width: number, height: number): RgbImage {
  const { width: sw, height: sh, data } = img;
  if (sw === width && sh === height) return rgbImage(width, height, data.slice());
  const out = new Uint8Array(width * height * 3);
  if (sw === 2 * width && sh === 2 * height) {
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) {
      const p = (r: number, q: number) => data[((2 * y + r) * sw + 2 * x + q) * 3 + c]!;
      out[(y * width + x) * 3 + c] = (p(0, 0) + p(0, 1) + p(1, 0) + p(1, 1) + 2) >> 2;
    }
    return rgbImage(width, height, out);
  }
  const tx = linearTaps(sw, width, true), ty = linearTaps(sh, height, false);
  // the horizontal pass of every source row, as int32 sums (value * 2048)
  const rows = new Int32Array(sh * width * 3);
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < width; x++) {
      const o0 = (y * sw + tx.i0[x]!) * 3, o1 = (y * sw + tx.i1[x]!) * 3;
      for (let c = 0; c < 3; c++) rows[(y * width + x) * 3 + c] = data[o0 + c]! * tx.a0[x]! + data[o1 + c]! * tx.a1[x]!;
    }
  }
  for (let y = 0; y < height; y++) {
    const r0 = ty.i0[y]! * width * 3, r1 = ty.i1[y]! * width * 3, b0 = ty.a0[y]!, b1 = ty.a1[y]!;
    for (let i = 0; i < width * 3; i++) {
      const v = (((b0 * (rows[r0 + i]! >> 4)) >> 16) + ((b1 * (rows[r1 + i]! >> 4)) >> 16) + 2) >> 2;
      out[y * width * 3 + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return rgbImage(width, height, out);
}

/**
 * mmseg's Normalize(to_rgb=True) of the detector's RGB image, NCHW float32: channel c is source channel 2 - c,
 * float32 (v - mean[c]) times float32 (1 / std[c]) as mmcv.imnormalize (cv2.subtract / cv2.multiply in float32).
 */
export function mmsegNormalize(img: RgbImage): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(MEAN[c]!), inv = Math.fround(1 / STD[c]!), src = 2 - c;
    for (let i = 0; i < n; i++) out[c * n + i] = Math.fround(Math.fround(img.data[3 * i + src]! - mean) * inv);
  }
  return out;
}

/**
 * The seg_ufade20k hint of `img` (any size; the hint has its size): class map of UniFormer + UperNet coloured with
 * the ADE20k palette. `model` is the session of the network built by buildUniformerUpernet.
 */
export async function uniformerSegmentation(img: RgbImage, model: ModelRef): Promise<RgbImage> {
  const session = await sessionOf(model);
  const { w, h } = mmsegRescaleSize(img.width, img.height);
  const scaled = w === img.width && h === img.height ? img : cvResizeLinear(img, w, h);
  const feeds = {
    x: new ort.Tensor('float32', mmsegNormalize(scaled), [1, 3, h, w]),
    output_size: new ort.Tensor('int64', BigInt64Array.of(BigInt(img.height), BigInt(img.width)), [2]),
  };
  const out = await session.run(feeds, ['labels']);
  const labels = out.labels!;
  if (labels.type !== 'int64') throw new Error(`segmentation labels are ${labels.type}, expected int64`);
  const ids = Array.from(labels.data as BigInt64Array, Number);
  return paletteImage(ids, img.width, img.height, ADE20K_PALETTE);
}
