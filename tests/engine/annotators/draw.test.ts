import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture } from '../../support/fixtures.ts';
import { ellipse2Poly, fillCircle, fillConvexPoly, line, type Color } from '../../../src/engine/annotators/draw.ts';
import { rgbImage } from '../../../src/engine/annotators/image.ts';
import { equalFraction, nonZero } from './agreement.ts';

const fx = loadFixture('annotators/draw');
const W = fx.meta.W as number, H = fx.meta.H as number;
const specs = fx.get('specs').data as Int32Array;
const rows = Array.from({ length: specs.length / 10 }, (_, i) => Array.from(specs.subarray(i * 10, i * 10 + 10)));

function check(key: string, draw: (img: ReturnType<typeof rgbImage>, s: number[]) => void): void {
  const img = rgbImage(W, H);
  for (const s of rows) draw(img, s);
  const ref = fx.get(key).data as Uint8Array;
  assert.ok(nonZero(ref) > 500, 'the reference has drawn pixels');
  const frac = equalFraction(img.data, ref);
  assert.equal(frac, 1, `${((1 - frac) * 100).toFixed(3)}% of values differ from OpenCV`);
}

const c = (s: number[]): Color => [s[4]!, s[5]!, s[6]!];

test('line (1 px) equals cv2.line', () => check('line1', (img, s) => line(img, { x: s[0]!, y: s[1]! }, { x: s[2]!, y: s[3]! }, c(s), 1)));
test('line (2 px) equals cv2.line', () => check('line2', (img, s) => line(img, { x: s[0]!, y: s[1]! }, { x: s[2]!, y: s[3]! }, c(s), 2)));
test('fillCircle equals cv2.circle(thickness=-1)', () => check('circle', (img, s) => fillCircle(img, { x: s[0]!, y: s[1]! }, s[7]!, c(s))));
test('ellipse2Poly equals cv2.ellipse2Poly', () => {
  const s = rows[0]!;
  const ours = ellipse2Poly({ x: s[0]!, y: s[1]! }, [s[8]!, 4], s[9]!, 0, 360, 1).flatMap((p) => [p.x, p.y]);
  assert.deepEqual(ours, Array.from(fx.get('poly0').data as Int32Array));
});
test('fillConvexPoly of ellipse2Poly equals OpenCV (the openpose limbs)', () =>
  check('ellipse', (img, s) => fillConvexPoly(img, ellipse2Poly({ x: s[0]!, y: s[1]! }, [s[8]!, 4], s[9]!, 0, 360, 1), c(s))));
