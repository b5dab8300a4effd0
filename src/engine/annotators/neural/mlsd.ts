// M-LSD straight lines (controlnet_aux mlsd/utils.py pred_lines + MLSDdetector): the network predicts, at half
// resolution, a line-centre heatmap and each centre's start/end displacements; centres that are local maxima
// (3x3) among the top 200 with score > thrV and length > thrD become segments, drawn 1 px white on black.
import type { RgbImage } from '../../pipeline/types.ts';
import { line, type Point } from '../draw.ts';
import { grayToRgb, resizeRgb, rgbImage } from '../image.ts';
import { multipleOf } from './dense.ts';
import { resizeBytes } from './post.ts';
import { runF32, sessionOf, type ModelRef, type F32Output } from './session.ts';

export type Segment = [number, number, number, number];

/** Decodes tpMap [1, 9, h, w] into segments in input-image pixels (2x the map; times the resize ratios). */
export function decodeLines(tp: F32Output, opts: { thrV?: number; thrD?: number; topK?: number; ratioW?: number; ratioH?: number } = {}): Segment[] {
  const { thrV = 0.1, thrD = 0.1, topK = 200, ratioW = 1, ratioH = 1 } = opts;
  const h = tp.dims[2]!, w = tp.dims[3]!, n = w * h;
  const heat = new Float32Array(n);
  for (let i = 0; i < n; i++) heat[i] = 1 / (1 + Math.exp(-tp.data[i]!));
  const kept = new Float32Array(n);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let m = -Infinity;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy, xx = x + dx;
          if (yy >= 0 && yy < h && xx >= 0 && xx < w) m = Math.max(m, heat[yy * w + xx]!);
        }
      }
      const v = heat[y * w + x]!;
      kept[y * w + x] = m === v ? v : 0;
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => kept[b]! - kept[a]! || a - b).slice(0, topK);
  const disp = (k: number, i: number) => tp.data[(1 + k) * n + i]!;
  const segs: Segment[] = [];
  for (const i of order) {
    const score = kept[i]!;
    const y = Math.floor(i / w), x = i % w;
    const dist = Math.sqrt((disp(0, i) - disp(2, i)) ** 2 + (disp(1, i) - disp(3, i)) ** 2);
    if (score > thrV && dist > thrD) {
      const s: Segment = [x + disp(0, i), y + disp(1, i), x + disp(2, i), y + disp(3, i)];
      segs.push([2 * s[0] * ratioW, 2 * s[1] * ratioH, 2 * s[2] * ratioW, 2 * s[3] * ratioH]);
    }
  }
  return segs;
}

/** White 1-px lines on black, end points truncated to int as the annotator does. */
export function drawSegments(segs: Segment[], width: number, height: number): RgbImage {
  const img = rgbImage(width, height);
  for (const s of segs) {
    const a: Point = { x: Math.trunc(s[0]), y: Math.trunc(s[1]) }, b: Point = { x: Math.trunc(s[2]), y: Math.trunc(s[3]) };
    line(img, a, b, [255, 255, 255], 1);
  }
  return img;
}

/** The model input: RGB and a ones channel, all scaled by /127.5 - 1. */
export function mlsdInput(img: RgbImage): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(4 * n);
  for (let c = 0; c < 3; c++) for (let i = 0; i < n; i++) out[c * n + i] = img.data[3 * i + c]! / 127.5 - 1;
  out.fill(1 / 127.5 - 1, 3 * n);
  return out;
}

export async function mlsd(img: RgbImage, model: ModelRef, thrV = 0.1, thrD = 0.1): Promise<RgbImage> {
  const w = multipleOf(img.width, 32), h = multipleOf(img.height, 32);
  const x = await resizeRgb(img, w, h);
  const [tp] = await runF32(await sessionOf(model), mlsdInput(x), [1, 4, h, w]);
  const drawn = drawSegments(decodeLines(tp!, { thrV, thrD }), w, h);
  const gray = new Uint8Array(w * h);
  for (let i = 0; i < w * h; i++) gray[i] = drawn.data[3 * i]!;
  return grayToRgb(resizeBytes(gray, w, h, 1, img.width, img.height), img.width, img.height);
}
