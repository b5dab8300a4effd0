// Raster primitives with OpenCV's pixel rules (opencv/modules/imgproc/src/drawing.cpp), so that skeletons,
// lines and face meshes land on the pixels the ControlNet annotators drew when the models were trained:
// cv2.line (thickness 1 and thick), cv2.circle (filled), cv2.fillConvexPoly and cv2.ellipse2Poly.
// Only what the annotators use: 8-connected lines, no anti-aliasing.
import type { RgbImage } from '../pipeline/types.ts';

export type Color = readonly [number, number, number];
export interface Point {
  x: number;
  y: number;
}

const XY_SHIFT = 16;
const XY_ONE = 1 << XY_SHIFT;

/** cvRound: round half to even (lrint), as OpenCV rounds doubles to int. */
export function cvRound(v: number): number {
  const r = Math.round(v);
  return (Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r) + 0; // + 0 turns -0 into 0
}

/** Arithmetic shift right that stays exact past 32 bits (fixed-point coordinates are 16.16 here). */
const sar = (v: number, s: number): number => Math.floor(v / 2 ** s);

/** Writes one pixel; points outside the canvas are ignored. */
function setPixel(img: RgbImage, x: number, y: number, c: Color): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  const o = (y * img.width + x) * 3;
  img.data[o] = c[0];
  img.data[o + 1] = c[1];
  img.data[o + 2] = c[2];
}

function hline(img: RgbImage, y: number, x1: number, x2: number, c: Color): void {
  if (y < 0 || y >= img.height) return;
  for (let x = Math.max(x1, 0); x <= Math.min(x2, img.width - 1); x++) setPixel(img, x, y, c);
}

/** Normalizes a color given as any numbers to bytes, rounding like OpenCV's scalar conversion. */
export function color(r: number, g: number, b: number): Color {
  const f = (v: number) => Math.min(255, Math.max(0, cvRound(v)));
  return [f(r), f(g), f(b)];
}

/** OpenCV's Cohen-Sutherland style clipLine on [0,w)x[0,h); returns false when nothing is visible. */
function clipLine(w: number, h: number, p1: Point, p2: Point): boolean {
  const right = w - 1, bottom = h - 1;
  let x1 = p1.x, y1 = p1.y, x2 = p2.x, y2 = p2.y;
  let c1 = (x1 < 0 ? 1 : 0) + (x1 > right ? 2 : 0) + (y1 < 0 ? 4 : 0) + (y1 > bottom ? 8 : 0);
  let c2 = (x2 < 0 ? 1 : 0) + (x2 > right ? 2 : 0) + (y2 < 0 ? 4 : 0) + (y2 > bottom ? 8 : 0);
  if ((c1 & c2) === 0 && (c1 | c2) !== 0) {
    let a: number;
    if (c1 & 12) {
      a = c1 < 8 ? 0 : bottom;
      x1 += Math.trunc((a - y1) * (x2 - x1) / (y2 - y1));
      y1 = a;
      c1 = (x1 < 0 ? 1 : 0) + (x1 > right ? 2 : 0);
    }
    if (c2 & 12) {
      a = c2 < 8 ? 0 : bottom;
      x2 += Math.trunc((a - y2) * (x2 - x1) / (y2 - y1));
      y2 = a;
      c2 = (x2 < 0 ? 1 : 0) + (x2 > right ? 2 : 0);
    }
    if ((c1 & c2) === 0 && (c1 | c2) !== 0) {
      if (c1) {
        a = c1 === 1 ? 0 : right;
        y1 += Math.trunc((a - x1) * (y2 - y1) / (x2 - x1));
        x1 = a;
        c1 = 0;
      }
      if (c2) {
        a = c2 === 1 ? 0 : right;
        y2 += Math.trunc((a - x2) * (y2 - y1) / (x2 - x1));
        x2 = a;
        c2 = 0;
      }
    }
  }
  p1.x = x1; p1.y = y1; p2.x = x2; p2.y = y2;
  return (c1 | c2) === 0;
}

/** A one-pixel 8-connected line (cv::LineIterator, left to right), as cv2.line with thickness 1 draws it. */
export function line1(img: RgbImage, a: Point, b: Point, c: Color): void {
  let p1 = { x: a.x, y: a.y }, p2 = { x: b.x, y: b.y };
  if (p2.x < p1.x) [p1, p2] = [p2, p1];
  if (!clipLine(img.width, img.height, p1, p2)) return;
  let dx = p2.x - p1.x, dy = p2.y - p1.y;
  if (dx < 0) { // clipping can reorder nothing, but keep the iterator's own left-to-right rule
    [p1, p2] = [p2, p1];
    dx = -dx;
    dy = -dy;
  }
  let stepMajor: [number, number] = [1, 0];
  let stepMinor: [number, number] = [0, dy < 0 ? -1 : 1];
  dy = Math.abs(dy);
  if (dy > dx) {
    [dx, dy] = [dy, dx];
    [stepMajor, stepMinor] = [stepMinor, stepMajor];
  }
  let err = dx - (dy + dy);
  let x = p1.x, y = p1.y;
  for (let i = 0; i <= dx; i++) {
    setPixel(img, x, y, c);
    const minor = err < 0;
    err += -(dy + dy) + (minor ? dx + dx : 0);
    x += stepMajor[0] + (minor ? stepMinor[0] : 0);
    y += stepMajor[1] + (minor ? stepMinor[1] : 0);
  }
}

/** cv::Line2: a line between 16.16 fixed-point points, used for the outline of sub-pixel polygons. */
function line2(img: RgbImage, a: Point, b: Point, c: Color): void {
  const p1 = { x: a.x, y: a.y }, p2 = { x: b.x, y: b.y };
  if (!clipLine(img.width * XY_ONE, img.height * XY_ONE, p1, p2)) return;
  let dx = p2.x - p1.x, dy = p2.y - p1.y;
  const ax = Math.abs(dx), ay = Math.abs(dy);
  let xStep: number, yStep: number, ecount: number;
  if (ax > ay) {
    if (dx < 0) {
      dy = -dy;
      [p1.x, p2.x] = [p2.x, p1.x];
      [p1.y, p2.y] = [p2.y, p1.y];
    }
    xStep = XY_ONE;
    yStep = Math.trunc((dy * XY_ONE) / (ax | 1));
    ecount = sar(p2.x - p1.x, XY_SHIFT);
  } else {
    if (dy < 0) {
      dx = -dx;
      [p1.x, p2.x] = [p2.x, p1.x];
      [p1.y, p2.y] = [p2.y, p1.y];
    }
    xStep = Math.trunc((dx * XY_ONE) / (ay | 1));
    yStep = XY_ONE;
    ecount = sar(p2.y - p1.y, XY_SHIFT);
  }
  p1.x += XY_ONE >> 1;
  p1.y += XY_ONE >> 1;
  setPixel(img, sar(p2.x + (XY_ONE >> 1), XY_SHIFT), sar(p2.y + (XY_ONE >> 1), XY_SHIFT), c);
  if (ax > ay) {
    let x = sar(p1.x, XY_SHIFT), y = p1.y;
    for (; ecount >= 0; ecount--, x++, y += yStep) setPixel(img, x, sar(y, XY_SHIFT), c);
  } else {
    let x = p1.x, y = sar(p1.y, XY_SHIFT);
    for (; ecount >= 0; ecount--, y++, x += xStep) setPixel(img, sar(x, XY_SHIFT), y, c);
  }
}

/** cv2.fillConvexPoly (8-connected); `shift` is the number of fractional bits of the points. */
export function fillConvexPoly(img: RgbImage, v: readonly Point[], c: Color, shift = 0): void {
  const npts = v.length;
  if (npts === 0) return;
  const delta = shift ? 1 << (shift - 1) : 0;
  const delta1 = XY_ONE >> 1, delta2 = XY_ONE >> 1;
  let imin = 0;
  let ymin = v[0]!.y, ymax = ymin, xmin = v[0]!.x, xmax = xmin;
  let p0 = { x: v[npts - 1]!.x * 2 ** (XY_SHIFT - shift), y: v[npts - 1]!.y * 2 ** (XY_SHIFT - shift) };
  for (let i = 0; i < npts; i++) {
    const p = v[i]!;
    if (p.y < ymin) { ymin = p.y; imin = i; }
    ymax = Math.max(ymax, p.y);
    xmax = Math.max(xmax, p.x);
    xmin = Math.min(xmin, p.x);
    const q = { x: p.x * 2 ** (XY_SHIFT - shift), y: p.y * 2 ** (XY_SHIFT - shift) };
    if (shift === 0) {
      line1(img, { x: sar(p0.x, XY_SHIFT), y: sar(p0.y, XY_SHIFT) }, { x: sar(q.x, XY_SHIFT), y: sar(q.y, XY_SHIFT) }, c);
    } else {
      line2(img, p0, q, c);
    }
    p0 = q;
  }
  xmin = sar(xmin + delta, shift);
  xmax = sar(xmax + delta, shift);
  ymin = sar(ymin + delta, shift);
  ymax = sar(ymax + delta, shift);
  if (npts < 3 || xmax < 0 || ymax < 0 || xmin >= img.width || ymin >= img.height) return;
  ymax = Math.min(ymax, img.height - 1);
  const edge = [0, 1].map((k) => ({ idx: imin, di: k === 0 ? 1 : npts - 1, x: -XY_ONE, dx: 0, ye: ymin }));
  let edges = npts;
  let y = ymin;
  do {
    for (const e of edge) {
      if (y < e.ye) continue;
      let idx0 = e.idx;
      let idx = idx0 + e.di;
      if (idx >= npts) idx -= npts;
      for (; edges-- > 0;) {
        const ty = sar(v[idx]!.y + delta, shift);
        if (ty > y) {
          const xs = v[idx0]!.x * 2 ** (XY_SHIFT - shift);
          const xe = v[idx]!.x * 2 ** (XY_SHIFT - shift);
          e.ye = ty;
          e.dx = Math.trunc(((xe - xs) * 2 + (ty - y)) / (2 * (ty - y)));
          e.x = xs;
          e.idx = idx;
          break;
        }
        idx0 = idx;
        idx += e.di;
        if (idx >= npts) idx -= npts;
      }
    }
    if (edges < 0) break;
    if (y >= 0) {
      const [l, r] = edge[0]!.x > edge[1]!.x ? [edge[1]!, edge[0]!] : [edge[0]!, edge[1]!];
      const x1 = sar(l.x + delta1, XY_SHIFT), x2 = sar(r.x + delta2, XY_SHIFT);
      if (x2 >= 0 && x1 < img.width) hline(img, y, x1, x2, c);
    }
    edge[0]!.x += edge[0]!.dx;
    edge[1]!.x += edge[1]!.dx;
  } while (++y <= ymax);
}

/** cv::Circle with fill: the midpoint circle as horizontal spans (cv2.circle(..., thickness=-1)). */
export function fillCircle(img: RgbImage, center: Point, radius: number, c: Color): void {
  let err = 0, dx = radius, dy = 0, plus = 1, minus = (radius << 1) - 1;
  const { x: cx, y: cy } = center;
  while (dx >= dy) {
    const y11 = cy - dy, y12 = cy + dy, y21 = cy - dx, y22 = cy + dx;
    const x11 = cx - dx, x12 = cx + dx, x21 = cx - dy, x22 = cx + dy;
    if (x11 < img.width && x12 >= 0 && y21 < img.height && y22 >= 0) {
      hline(img, y11, x11, x12, c);
      hline(img, y12, x11, x12, c);
      if (x21 < img.width && x22 >= 0) {
        hline(img, y21, x21, x22, c);
        hline(img, y22, x21, x22, c);
      }
    }
    dy++;
    err += plus;
    plus += 2;
    const mask = err <= 0 ? 0 : -1;
    err -= minus & mask;
    dx += mask;
    minus -= mask & 2;
  }
}

/** cv2.line with any thickness (integer end points): thick lines are a sub-pixel polygon plus round caps. */
export function line(img: RgbImage, a: Point, b: Point, c: Color, thickness = 1): void {
  if (thickness <= 1) {
    line1(img, a, b, c);
    return;
  }
  // OpenCV 5 first clips the end points (integer pixels) to the image grown by a margin; measured against
  // cv2.line for thickness 2 (the only thick lines the annotators draw), the margin is the thickness.
  const m = thickness;
  const ca = { x: a.x + m, y: a.y + m }, cb = { x: b.x + m, y: b.y + m };
  if (!clipLine(img.width + 2 * m, img.height + 2 * m, ca, cb)) return;
  ca.x -= m; ca.y -= m; cb.x -= m; cb.y -= m;
  const p0 = { x: ca.x * XY_ONE, y: ca.y * XY_ONE }, p1 = { x: cb.x * XY_ONE, y: cb.y * XY_ONE };
  const dx = (p0.x - p1.x) / XY_ONE, dy = (p1.y - p0.y) / XY_ONE;
  let r = dx * dx + dy * dy;
  const odd = thickness & 1;
  const t = thickness * 2 ** (XY_SHIFT - 1);
  if (Math.abs(r) > Number.EPSILON) {
    r = (t + odd * XY_ONE * 0.5) / Math.sqrt(r);
    const dpx = cvRound(dy * r), dpy = cvRound(dx * r);
    fillConvexPoly(img, [
      { x: p0.x + dpx, y: p0.y + dpy }, { x: p0.x - dpx, y: p0.y - dpy },
      { x: p1.x - dpx, y: p1.y - dpy }, { x: p1.x + dpx, y: p1.y + dpy },
    ], c, XY_SHIFT);
  }
  const radius = sar(t + (XY_ONE >> 1), XY_SHIFT);
  for (const p of [p0, p1]) fillCircle(img, { x: sar(p.x + (XY_ONE >> 1), XY_SHIFT), y: sar(p.y + (XY_ONE >> 1), XY_SHIFT) }, radius, c);
}

/** cv2.ellipse2Poly with integer arguments: points every `delta` degrees, rounded, consecutive duplicates dropped. */
export function ellipse2Poly(center: Point, axes: [number, number], angle: number, arcStart: number, arcEnd: number, delta: number): Point[] {
  while (angle < 0) angle += 360;
  while (angle > 360) angle -= 360;
  if (arcStart > arcEnd) [arcStart, arcEnd] = [arcEnd, arcStart];
  while (arcStart < 0) { arcStart += 360; arcEnd += 360; }
  while (arcEnd > 360) { arcEnd -= 360; arcStart -= 360; }
  if (arcEnd - arcStart > 360) { arcStart = 0; arcEnd = 360; }
  // OpenCV reads sin/cos of whole degrees from a float table written with 7 decimals.
  const sinDeg = (d: number) => Math.fround(Math.round(Math.sin((d * Math.PI) / 180) * 1e7) / 1e7);
  const alpha = sinDeg(450 - angle), beta = sinDeg(angle);
  const out: Point[] = [];
  for (let i = arcStart; i < arcEnd + delta; i += delta) {
    let a = i;
    if (a > arcEnd) a = arcEnd;
    if (a < 0) a += 360;
    const x = axes[0] * sinDeg(450 - a), y = axes[1] * sinDeg(a);
    const pt = { x: cvRound(center.x + x * alpha - y * beta), y: cvRound(center.y + x * beta + y * alpha) };
    const prev = out[out.length - 1];
    if (!prev || prev.x !== pt.x || prev.y !== pt.y) out.push(pt);
  }
  if (out.length === 1) out.push(out[0]!);
  return out;
}
