// Canny edges, a port of OpenCV's cv2.Canny(img, low, high) with apertureSize 3 and L2gradient false, which
// is what the ControlNet 1.1 canny annotator runs on the RGB (HWC uint8) image: per pixel the channel with
// the largest |dx|+|dy| wins, then non-maximum suppression and hysteresis as in opencv/modules/imgproc/src/canny.cpp.
import type { RgbImage } from '../pipeline/types.ts';
import { grayToRgb } from './image.ts';

const SHIFT = 15;
const TG22 = Math.round(0.4142135623730950488 * (1 << SHIFT)); // tan(22.5°) in fixed point

/** 3x3 Sobel with replicated borders over every channel; keeps the channel of largest L1 magnitude per pixel. */
function gradients(img: { width: number; height: number; channels: number; data: Uint8Array }): { dx: Int32Array; dy: Int32Array; mag: Int32Array } {
  const { width: w, height: h, channels: cn, data } = img;
  const dx = new Int32Array(w * h), dy = new Int32Array(w * h), mag = new Int32Array(w * h).fill(-1);
  for (let y = 0; y < h; y++) {
    const rm = (y > 0 ? y - 1 : 0) * w * cn, r0 = y * w * cn, rp = (y < h - 1 ? y + 1 : h - 1) * w * cn;
    for (let x = 0; x < w; x++) {
      const cm = (x > 0 ? x - 1 : 0) * cn, c0 = x * cn, cp = (x < w - 1 ? x + 1 : w - 1) * cn;
      const i = y * w + x;
      for (let c = 0; c < cn; c++) {
        const a = data[rm + cm + c]!, b = data[rm + c0 + c]!, d = data[rm + cp + c]!;
        const l = data[r0 + cm + c]!, r = data[r0 + cp + c]!;
        const e = data[rp + cm + c]!, f = data[rp + c0 + c]!, g = data[rp + cp + c]!;
        const gx = d - a + 2 * (r - l) + g - e;
        const gy = e - a + 2 * (f - b) + g - d;
        const m = (gx < 0 ? -gx : gx) + (gy < 0 ? -gy : gy);
        if (m > mag[i]!) { // strictly greater: the first channel wins ties, as in OpenCV
          mag[i] = m;
          dx[i] = gx;
          dy[i] = gy;
        }
      }
    }
  }
  return { dx, dy, mag };
}

/** Edge map (0 or 255 per pixel) of an interleaved uint8 image with 1 or 3 channels. */
export function cannyEdges(img: { width: number; height: number; channels: number; data: Uint8Array }, low = 100, high = 200): Uint8Array {
  if (low > high) [low, high] = [high, low];
  const lo = Math.floor(low), hi = Math.floor(high);
  const { width: w, height: h } = img;
  const { dx, dy, mag } = gradients(img);
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= w || y >= h ? 0 : mag[y * w + x]!);
  // 0: candidate (weak), 1: not an edge, 2: edge
  const map = new Uint8Array(w * h).fill(1);
  const stack: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const m = mag[i]!;
      if (m <= lo) continue;
      const xs = dx[i]!, ys = dy[i]!;
      const ax = Math.abs(xs), ay = Math.abs(ys) * (1 << SHIFT);
      const tg22x = ax * TG22;
      let peak: boolean;
      if (ay < tg22x) {
        peak = m > at(x - 1, y) && m >= at(x + 1, y);
      } else if (ay > tg22x + ax * (1 << (SHIFT + 1))) {
        peak = m > at(x, y - 1) && m >= at(x, y + 1);
      } else {
        const s = (xs < 0) !== (ys < 0) ? -1 : 1;
        peak = m > at(x - s, y - 1) && m > at(x + s, y + 1);
      }
      if (!peak) continue;
      if (m > hi) {
        map[i] = 2;
        stack.push(i);
      } else {
        map[i] = 0;
      }
    }
  }
  // Hysteresis: weak pixels 8-connected to an edge become edges.
  while (stack.length) {
    const i = stack.pop()!;
    const x = i % w, y = (i - x) / w;
    for (let oy = -1; oy <= 1; oy++) {
      const ny = y + oy;
      if (ny < 0 || ny >= h) continue;
      for (let ox = -1; ox <= 1; ox++) {
        const nx = x + ox;
        if (nx < 0 || nx >= w) continue;
        const j = ny * w + nx;
        if (map[j] === 0) {
          map[j] = 2;
          stack.push(j);
        }
      }
    }
  }
  const out = new Uint8Array(w * h);
  for (let i = 0; i < w * h; i++) out[i] = map[i] === 2 ? 255 : 0;
  return out;
}

/** The canny hint: edges of the RGB image with thresholds 100 / 200, as a 3-channel white-on-black image. */
export function canny(img: RgbImage, low = 100, high = 200): RgbImage {
  return grayToRgb(cannyEdges({ ...img, channels: 3 }, low, high), img.width, img.height);
}
