// The pipeline against diffusers' ControlNet pipelines on the tiny models (tools/oracle/pipeline.py):
// max abs error <= 2e-3 on [0,1] pixels, same seed and scheduler.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Pipeline } from '../../../src/engine/pipeline/pipeline.ts';
import { maxAbsDiff } from '../../support/fixtures.ts';
import { fx, options, toNp } from '../../support/pipeline-cases.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';

const TOL = 2e-3;
const dataDir = tinyDataDir();
const pipeline = await Pipeline.create({ dataDir, threads: 1, tomeUseRand: false });
after(() => rmSync(dataDir, { recursive: true, force: true }));

// the tiled-VAE case runs in tiled-decode.test.ts, whose process lowers the tiling threshold
for (const [name, c] of Object.entries<Record<string, any>>(fx.meta.cases).filter(([, c]) => !c.tiled_vae)) {
  test(`${name} equals diffusers (${c.scheduler}, ${c.steps} steps, seed ${c.seed})`, async (t) => {
    const { pixels } = await pipeline.generateRaw(options(c));
    const d = maxAbsDiff(toNp(pixels, c.samples), fx.f32(`out.${name}`));
    t.diagnostic(`max abs error ${d.toExponential(2)}`);
    assert.ok(d <= TOL, `${name}: max abs error ${d} > ${TOL}`);
  });
}

test('a different seed gives a different image (the comparison is not blind)', async () => {
  const c = fx.meta.cases.txt2img;
  const { pixels } = await pipeline.generateRaw({ ...options(c), seed: c.seed + 1 });
  assert.ok(maxAbsDiff(toNp(pixels, c.samples), fx.f32('out.txt2img')) > 0.05);
});
