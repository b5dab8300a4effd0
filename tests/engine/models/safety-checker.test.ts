// diffusers' StableDiffusionSafetyChecker on a tiny random CLIP config (tools/oracle/safety_checker.py): the same
// embeddings and similarities (max abs error ≤ 1e-4, a single network forward) and the same flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { buildSafetyChecker, safetyFlags } from '../../../src/engine/models/safety-checker.ts';
import { openSafetensors } from '../../../src/engine/weights/safetensors.ts';
import { FIXTURES, loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { sessionFor } from './support.ts';

const fx = loadFixture('safety_checker/outputs');
const dir = join(FIXTURES, 'safety_checker', 'tiny');

test('the checker graph equals diffusers: embeddings and cosine similarities', async (t) => {
  const src = await openSafetensors(join(dir, 'model.safetensors'));
  const session = await sessionFor(buildSafetyChecker(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), src));
  const x = fx.get('pixel_values');
  const out = await session.run({ pixel_values: new ort.Tensor('float32', x.data as Float32Array, x.shape) });
  for (const [name, key] of [['image_embeds', 'image_embeds'], ['special_cos', 'special_cos'], ['concept_cos', 'concept_cos']] as const) {
    const d = maxAbsDiff(out[name]!.data as Float32Array, fx.f32(key));
    t.diagnostic(`${name}: max abs error ${d.toExponential(2)}`);
    assert.ok(d <= 1e-4, `${name}: ${d}`);
  }
  const flags = safetyFlags(out.special_cos!.data as Float32Array, out.concept_cos!.data as Float32Array, fx.f32('special_thresholds'), fx.f32('concept_thresholds'));
  assert.deepEqual(flags, fx.meta.flags);
  assert.ok(flags.includes(true) && flags.includes(false), 'the fixture mixes flagged and clean images');
});

test('the flag rule: a special-care hit lowers every concept threshold by 0.01', () => {
  const thr = Float32Array.of(0.5);
  assert.deepEqual(safetyFlags(Float32Array.of(0.4), Float32Array.of(0.495), thr, thr), [false]);
  assert.deepEqual(safetyFlags(Float32Array.of(0.6), Float32Array.of(0.495), thr, thr), [true]);
});
