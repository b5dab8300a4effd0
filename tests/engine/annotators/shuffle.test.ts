import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { noiseDisk, shuffle, shuffleWithGrids } from '../../../src/engine/annotators/shuffle.ts';
import { equalFraction } from './agreement.ts';

const fx = loadFixture('annotators/shuffle');
const f = fx.meta.f as number;

for (const name of fx.meta.names as string[]) {
  const img = fx.get(`${name}/shuffled`);
  const [h, w] = img.shape as [number, number];
  const gx = Float64Array.from(fx.f32(`${name}/grid_x`)), gy = Float64Array.from(fx.f32(`${name}/grid_y`));

  test(`noise disk equals make_noise_disk (cv2 INTER_CUBIC) on ${name}`, () => {
    const ours = noiseDisk(gx, h, w, f);
    const err = maxAbsDiff(ours, fx.f32(`${name}/disk_x`));
    assert.ok(err < 1e-7, `max abs error ${err} (the reference is stored as float32)`);
  });

  test(`shuffle equals ContentShuffleDetector's cv2.remap on ${name}`, async () => {
    const src = loadFixture('annotators/canny').get(`${name}/image`);
    const out = shuffleWithGrids({ width: w, height: h, data: src.data as Uint8Array }, gx, gy, f);
    const frac = equalFraction(out.data, img.data as Uint8Array);
    assert.equal(frac, 1, `${((1 - frac) * 100).toFixed(3)}% of values differ`);
  });
}

test('shuffle is reproducible from its seed and changes with it', () => {
  const src = loadFixture('annotators/canny').get('shapes64/image');
  const img = { width: 64, height: 64, data: src.data as Uint8Array };
  const a = shuffle(img, 42), b = shuffle(img, 42), c = shuffle(img, 43);
  assert.deepEqual(a.data, b.data);
  assert.ok(equalFraction(a.data, c.data) < 0.9, 'a different seed gives a different flow');
});
