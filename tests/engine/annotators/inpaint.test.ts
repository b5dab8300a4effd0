import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { inpaintCondition } from '../../../src/engine/annotators/index.ts';

const fx = loadFixture('annotators/inpaint');
const images = loadFixture('annotators/canny');

for (const name of fx.meta.names as string[]) {
  test(`inpaintCondition equals diffusers' make_inpaint_condition on ${name}`, () => {
    const src = images.get(`${name}/image`);
    const [h, w] = src.shape as [number, number];
    const cond = inpaintCondition({ width: w, height: h, data: src.data as Uint8Array }, { width: w, height: h, data: fx.get(`${name}/mask`).data as Uint8Array });
    const ref = fx.f32(`${name}/condition`);
    let masked = 0;
    for (const v of ref) if (v === -1) masked++;
    assert.ok(masked > 100, 'the mask covers pixels');
    assert.ok(maxAbsDiff(cond, ref) < 1e-7);
  });
}

test('inpaintCondition rejects a mask of another size', () => {
  const img = { width: 2, height: 2, data: new Uint8Array(12) };
  assert.throws(() => inpaintCondition(img, { width: 1, height: 1, data: new Uint8Array(3) }), /mask is 1x1/);
});
