// Post-processing of the dense annotator networks, each following its controlnet_aux 0.0.10 detector:
// the network output at model resolution becomes a uint8 map there, then is resized to the output size.
import type { RgbImage } from '../../pipeline/types.ts';
import { grayToRgb, resizeBilinear, rgbImage, toByte, type FloatMap } from '../image.ts';
import type { F32Output } from './session.ts';

/**
 * Bilinear resize of a uint8 map (1 or 3 channels, interleaved), rounded to nearest. cv2.resize(INTER_LINEAR)
 * on uint8 rounds differently in OpenCV 5 (not reproduced: results agree within 1 gray level).
 */
export function resizeBytes(src: Uint8Array, w: number, h: number, channels: number, width: number, height: number): Uint8Array {
  if (w === width && h === height) return src;
  const out = new Uint8Array(width * height * channels);
  for (let c = 0; c < channels; c++) {
    const plane = new Float32Array(w * h);
    for (let i = 0; i < w * h; i++) plane[i] = src[i * channels + c]!;
    const r = resizeBilinear({ width: w, height: h, data: plane }, width, height);
    for (let i = 0; i < width * height; i++) out[i * channels + c] = Math.min(255, Math.max(0, Math.round(r.data[i]!)));
  }
  return out;
}

/** A [.., H, W] output's last two dims as a map of its first plane. */
export function planeOf(o: F32Output, index = 0): FloatMap {
  const h = o.dims[o.dims.length - 2]!, w = o.dims[o.dims.length - 1]!;
  return { width: w, height: h, data: o.data.subarray(index * w * h, (index + 1) * w * h) };
}

/** MiDaS / Depth Anything: depth -= min; depth /= max; (depth * 255) → uint8 (controlnet_aux midas). */
export function depthToBytes(depth: FloatMap): Uint8Array {
  let lo = Infinity, hi = -Infinity;
  for (const v of depth.data) lo = Math.min(lo, v);
  const shifted = new Float32Array(depth.data.length);
  for (let i = 0; i < shifted.length; i++) hi = Math.max(hi, (shifted[i] = depth.data[i]! - lo));
  const out = new Uint8Array(shifted.length);
  // A constant map has max 0: torch divides 0/0 = NaN, which becomes 0 in uint8; keep it black.
  for (let i = 0; i < out.length; i++) out[i] = hi > 0 ? toByte(Math.fround(shifted[i]! / hi)) : 0;
  return out;
}

export function depthImage(depth: FloatMap, width: number, height: number): RgbImage {
  return grayToRgb(resizeBytes(depthToBytes(depth), depth.width, depth.height, 1, width, height), width, height);
}

/** NormalBae: the first three channels of the [1, 4, H, W] output, ((n + 1) / 2).clip(0, 1) * 255 as RGB. */
export function normalImage(out: F32Output, width: number, height: number): RgbImage {
  const h = out.dims[2]!, w = out.dims[3]!, n = w * h;
  if (out.dims[1]! < 3) throw new Error(`normal model output has ${out.dims[1]} channels, expected at least 3`);
  const bytes = new Uint8Array(n * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) {
      const v = Math.fround(Math.fround(out.data[c * n + i]! + 1) * 0.5);
      bytes[i * 3 + c] = toByte(Math.min(1, Math.max(0, v)));
    }
  }
  return rgbImage(width, height, resizeBytes(bytes, w, h, 3, width, height));
}

/** HED: every side output resized to the input size, averaged, sigmoid, * 255 (controlnet_aux hed). */
export function hedBytes(sides: F32Output[], w: number, h: number): Uint8Array {
  const maps = sides.map((s) => resizeBilinear(planeOf(s), w, h));
  const out = new Uint8Array(w * h);
  for (let i = 0; i < w * h; i++) {
    let s = 0;
    for (const m of maps) s += m.data[i]!;
    out[i] = toByte(1 / (1 + Math.exp(-Math.fround(s / maps.length))));
  }
  return out;
}

/** A [1, 1, H, W] map in [0, 1] to uint8 (PiDiNet's last output is already a sigmoid; lineart likewise). */
export function unitMapBytes(o: F32Output): Uint8Array {
  const m = planeOf(o);
  const out = new Uint8Array(m.data.length);
  for (let i = 0; i < out.length; i++) out[i] = toByte(m.data[i]!);
  return out;
}

/** Lineart: the model draws lines dark-on-white; the ControlNet wants white lines on black (255 - map). */
export function lineartImage(o: F32Output, width: number, height: number): RgbImage {
  const m = planeOf(o);
  const bytes = resizeBytes(unitMapBytes(o), m.width, m.height, 1, width, height);
  for (let i = 0; i < bytes.length; i++) bytes[i] = 255 - bytes[i]!;
  return grayToRgb(bytes, width, height);
}

/**
 * Segmentation: class logits [1, C, h, w] upsampled bilinearly to the output size (transformers'
 * post_process_semantic_segmentation), argmax per pixel, each class painted with its ADE20k palette color.
 */
export function segmentationImage(logits: F32Output, width: number, height: number, palette: Uint8Array): RgbImage {
  const c = logits.dims[1]!;
  const maps = Array.from({ length: c }, (_, k) => resizeBilinear(planeOf(logits, k), width, height));
  const ids = new Uint16Array(width * height);
  for (let i = 0; i < ids.length; i++) {
    let best = 0, bv = -Infinity;
    for (let k = 0; k < c; k++) {
      const v = maps[k]!.data[i]!;
      if (v > bv) { bv = v; best = k; } // first maximum wins, like argmax
    }
    ids[i] = best;
  }
  return paletteImage(ids, width, height, palette);
}

/** Class ids to colors; ids past the palette are drawn black. */
export function paletteImage(ids: ArrayLike<number>, width: number, height: number, palette: Uint8Array): RgbImage {
  const out = new Uint8Array(width * height * 3);
  const n = palette.length / 3;
  for (let i = 0; i < width * height; i++) {
    const id = ids[i]!;
    if (id < n) out.set(palette.subarray(id * 3, id * 3 + 3), i * 3);
  }
  return rgbImage(width, height, out);
}
