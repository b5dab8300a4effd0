import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture } from '../../support/fixtures.ts';
import { cannyEdges } from '../../../src/engine/annotators/canny.ts';

const fx = loadFixture('annotators/canny');

function agreement(a: Uint8Array, b: ArrayLike<number>): { equal: number; total: number } {
  assert.equal(a.length, b.length);
  let equal = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) equal++;
  return { equal, total: a.length };
}

for (const name of fx.meta.names as string[]) {
  const img = fx.get(`${name}/image`);
  const [h, w] = img.shape as [number, number];
  const cases: [string, number, Uint8Array, number, number][] = [
    ['canny', 3, img.data as Uint8Array, 100, 200],
    ['canny_50_120', 3, img.data as Uint8Array, 50, 120],
    ['gray_canny', 1, fx.get(`${name}/gray`).data as Uint8Array, 100, 200],
  ];
  for (const [key, channels, data, lo, hi] of cases) {
    test(`canny equals cv2.Canny on ${name} (${key})`, () => {
      const ours = cannyEdges({ width: w, height: h, channels, data }, lo, hi);
      const ref = fx.get(`${name}/${key}`).data as Uint8Array;
      const { equal, total } = agreement(ours, ref);
      let edges = 0;
      for (const v of ref) if (v) edges++;
      assert.ok(edges > 20, `fixture has edges (${edges})`);
      assert.equal(equal, total, `${total - equal} of ${total} pixels differ (${edges} edge pixels in the reference)`);
    });
  }
}
