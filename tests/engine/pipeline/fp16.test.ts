// The whole pipeline with ENGINE_PRECISION=fp16 (CLIP, UNet, ControlNets in float16; the VAE float32 under its
// force_upcast) against diffusers' fp32 pipelines on the tiny models (tools/oracle/pipeline.py's fixtures).
// Measured max abs error on [0,1] pixels: 1.8e-3 to 5.7e-3 over the cases (the fp32 pipeline: ≈ 4e-6); the bound is
// 1e-2: float16's per-layer rounding (networks: ~1e-3 relative, tests/engine/models/fp16.test.ts), carried through
// 4-6 scheduler steps and the VAE. ToMe is the exception, 2.6e-2. Our reading of it (not proven token by token):
// its token matching is a discrete choice (an argmax and a sort over similarities) that near-ties flip when the
// activations it compares carry float16 rounding, and a flipped match merges other tokens. One fp16 UNet forward with
// ToMe is as close to fp32 as one without (7e-4 vs 6e-4 relative, tests/engine/models/fp16.test.ts), so the merge
// computes right; the gap grows over the steps. Its bound is 5e-2.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Pipeline } from '../../../src/engine/pipeline/pipeline.ts';
import { maxAbsDiff } from '../../support/fixtures.ts';
import { fx, options, toNp } from '../../support/pipeline-cases.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';

const dataDir = tinyDataDir();
const pipeline = await Pipeline.create({ dataDir, threads: 1, tomeUseRand: false, precision: 'fp16' });
after(() => rmSync(dataDir, { recursive: true, force: true }));

test('the engine reports fp16', () => {
  assert.equal(pipeline.stats().precision, 'fp16');
});

for (const [name, bound] of [['multi', 1e-2], ['inpaint_075', 1e-2], ['lora', 1e-2], ['tome', 5e-2]] as const) {
  const c = fx.meta.cases[name];
  test(`fp16 ${name} is within ${bound} of diffusers fp32 (${c.scheduler}, ${c.steps} steps)`, async (t) => {
    const { pixels } = await pipeline.generateRaw(options(c));
    const d = maxAbsDiff(toNp(pixels, c.samples), fx.f32(`out.${name}`));
    t.diagnostic(`max abs error ${d.toExponential(2)}`);
    assert.ok(d <= bound, `${name}: max abs error ${d} > ${bound}`);
    assert.ok(d > 1e-5, 'the fp16 graphs ran (an fp32 run matches to ~4e-6)');
  });
}
