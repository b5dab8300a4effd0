// Token choice against transformers' warpers (tools/oracle/gpt2.py: Temperature, TopK, TopP applied to the first
// step's logits of the tiny GPT-2, then softmax): the same probabilities within 1e-6 for each setting; drawing
// follows the cumulative distribution.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argmax, drawToken, SeededUniform, warpedProbabilities } from '../../../src/engine/extras/token-sampling.ts';
import { loadFixture, maxAbsDiff } from '../../support/fixtures.ts';

const fx = loadFixture('gpt2/outputs');
const V = fx.meta.vocab_size as number;
const logits = fx.f32('logits.0').subarray(0, V);

test('warped probabilities equal transformers\' warpers for each setting', () => {
  for (const [j, w] of (fx.meta.warps as { temperature: number; top_k: number; top_p: number }[]).entries()) {
    const ours = warpedProbabilities(logits, { temperature: w.temperature, topK: w.top_k, topP: w.top_p });
    const ref = fx.f32(`warp.${j}`);
    assert.ok(maxAbsDiff(ours, ref) <= 1e-6, `setting ${JSON.stringify(w)}: ${maxAbsDiff(ours, ref)}`);
    // the same set of tokens kept
    assert.deepEqual([...ours].map((p) => p > 0), [...ref].map((p) => p > 0), JSON.stringify(w));
  }
});

test('top_k 1 keeps only the argmax; bad settings are refused', () => {
  const p = warpedProbabilities(logits, { temperature: 1, topK: 1, topP: 1 });
  assert.equal(p[argmax(logits)], 1);
  assert.throws(() => warpedProbabilities(logits, { temperature: 0, topK: 0, topP: 1 }), /temperature/);
  assert.throws(() => warpedProbabilities(logits, { temperature: 1, topK: 0, topP: 0 }), /top_p/);
});

test('drawToken: u falls in the token\'s cumulative interval; SeededUniform is reproducible and in [0, 1)', () => {
  const probs = Float64Array.of(0, 0.25, 0, 0.5, 0.25);
  assert.equal(drawToken(probs, 0), 1);
  assert.equal(drawToken(probs, 0.2499), 1);
  assert.equal(drawToken(probs, 0.25), 3);
  assert.equal(drawToken(probs, 0.7499), 3);
  assert.equal(drawToken(probs, 0.9999999), 4);
  const a = new SeededUniform(5), b = new SeededUniform(5);
  const xs = Array.from({ length: 1000 }, () => a.next());
  assert.deepEqual(xs, Array.from({ length: 1000 }, () => b.next()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
});
