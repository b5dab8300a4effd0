// torchvision's uint8 antialiased bicubic resize (what transformers 5's CLIPImageProcessor runs), byte for byte,
// against torchvision itself (tools/oracle/clip_preprocess.py): reductions up to 5.4×, enlargements, one axis or both,
// odd sizes and saturated patches. Pillow's bicubic differs from it in 0.3-0.6% of these bytes (the oracle counts
// them), so the check can tell the two apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resizeBicubicAntialias } from '../../../src/engine/extras/bicubic-antialias.ts';
import { loadFixture } from '../../support/fixtures.ts';

const fx = loadFixture('safety_checker/clip_preprocess');
type Case = { width: number; height: number; resized: [number, number]; pillow_bytes_differing: number };

test('resizeBicubicAntialias equals torchvision\'s resize(BICUBIC, antialias=True) on uint8 exactly', () => {
  const cases = fx.meta.cases as Case[];
  assert.ok(cases.some((c) => c.pillow_bytes_differing > 0), 'the cases separate torchvision from Pillow');
  for (const [i, c] of cases.entries()) {
    const [w, h] = c.resized;
    const ours = resizeBicubicAntialias({ width: c.width, height: c.height, data: fx.get(`image${i}`).data as Uint8Array }, w, h);
    const theirs = fx.get(`resized${i}`).data as Uint8Array;
    assert.equal(ours.data.length, theirs.length);
    let differ = 0;
    for (let k = 0; k < theirs.length; k++) if (ours.data[k] !== theirs[k]) differ++;
    assert.equal(differ, 0, `case ${i} (${c.width}x${c.height} → ${w}x${h}): ${differ} bytes differ`);
  }
});

test('the same size is a copy', () => {
  const data = Uint8Array.from({ length: 5 * 4 * 3 }, (_, i) => (i * 37) % 256);
  const out = resizeBicubicAntialias({ width: 5, height: 4, data }, 5, 4);
  assert.deepEqual(out.data, data);
  assert.notEqual(out.data, data, 'a new buffer');
});
