import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture } from '../../support/fixtures.ts';
import { ridgeNms } from '../../../src/engine/annotators/filters.ts';
import { scribbleFromCanny, scribbleFromSoftEdges } from '../../../src/engine/annotators/scribble.ts';
import { equalFraction, firstChannel, nonZero } from './agreement.ts';

const fx = loadFixture('annotators/scribble');
const images = loadFixture('annotators/canny');

for (const name of fx.meta.names as string[]) {
  const src = images.get(`${name}/image`);
  const [h, w] = src.shape as [number, number];
  const soft = fx.get(`${name}/soft`).data as Uint8Array;

  test(`scribble nms equals controlnet_aux util.nms on ${name}`, () => {
    const thin = ridgeNms({ width: w, height: h, data: Float32Array.from(soft) }, 127, 3);
    const ref = fx.get(`${name}/thin`).data as Uint8Array;
    assert.ok(nonZero(ref) > 10);
    const frac = equalFraction(thin, ref);
    assert.ok(frac >= 0.999, `agreement ${(frac * 100).toFixed(3)}%`);
  });

  test(`scribble from soft edges equals the HED scribble post-processing on ${name}`, () => {
    const out = firstChannel(scribbleFromSoftEdges(soft, w, h).data);
    const frac = equalFraction(out, fx.get(`${name}/scribble`).data as Uint8Array);
    assert.ok(frac >= 0.995, `agreement ${(frac * 100).toFixed(3)}%`);
  });

  test(`scribble canny fallback equals blur(canny) > 4 on ${name}`, () => {
    const out = firstChannel(scribbleFromCanny({ width: w, height: h, data: src.data as Uint8Array }).data);
    const frac = equalFraction(out, fx.get(`${name}/canny_scribble`).data as Uint8Array);
    assert.ok(frac >= 0.995, `agreement ${(frac * 100).toFixed(3)}%`);
  });
}
