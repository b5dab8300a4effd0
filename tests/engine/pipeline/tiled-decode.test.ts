// Tiled VAE decoding through the pipeline against diffusers with vae.enable_tiling() (tools/oracle/pipeline.py,
// case "tiled"). Tiling starts above the vaeTileAbovePixels setting (VAE_TILE_ABOVE_PIXELS): this test sets it to
// 0, so the tiny model's 32x32 images decode in its 8x8-latent tiles, as diffusers' do.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { maxAbsDiff } from '../../support/fixtures.ts';
import { fx, options, toNp } from '../../support/pipeline-cases.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';

import { Pipeline } from '../../../src/engine/pipeline/pipeline.ts';

const dataDir = tinyDataDir();
const pipeline = await Pipeline.create({ dataDir, threads: 1, tomeUseRand: false, vaeTileAbovePixels: 0 });
after(() => rmSync(dataDir, { recursive: true, force: true }));

test('tiled VAE decoding equals diffusers enable_tiling()', async (t) => {
  const c = fx.meta.cases.tiled;
  const { pixels } = await pipeline.generateRaw(options(c));
  const d = maxAbsDiff(toNp(pixels, c.samples), fx.f32('out.tiled'));
  t.diagnostic(`max abs error ${d.toExponential(2)}`);
  assert.ok(d <= 2e-3, `tiled: max abs error ${d} > 2e-3`);
  // diffusers' untiled decode of the same request differs: the case really exercises tiling
  const gap = maxAbsDiff(fx.f32('out.untiled'), fx.f32('out.tiled'));
  t.diagnostic(`tiled vs untiled in diffusers: ${gap.toExponential(2)}`);
  assert.ok(gap > 1e-2, `tiling changed the image by only ${gap}`);
});
