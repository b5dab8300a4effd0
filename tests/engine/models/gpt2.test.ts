// GPT2LMHeadModel built by our builder against transformers (tools/oracle/gpt2.py, tiny random weights): the
// first step's logits of every prompt from model.safetensors and from the older pytorch_model.bin layout (tied
// lm_head.weight and causal-mask buffers present), and the KV cache: a prompt fed in two parts gives the logits of
// the whole. Tolerance: max abs error ≤ 1e-4 on logits (a single network forward, DESIGN.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { buildGpt2, gpt2Dims } from '../../../src/engine/models/gpt2.ts';
import { openWeightsFile } from '../../../src/engine/weights/open.ts';
import { FIXTURES, loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { sessionFor } from './support.ts';

const fx = loadFixture('gpt2/outputs');
const config = JSON.parse(readFileSync(join(FIXTURES, 'gpt2', 'tiny', 'config.json'), 'utf8'));
const dims = gpt2Dims(config);
const V = fx.meta.vocab_size as number;

function feeds(ids: number[], past?: ort.InferenceSession.OnnxValueMapType): Record<string, ort.Tensor> {
  const f: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]) };
  for (let i = 0; i < dims.layers; i++) {
    for (const kv of ['key', 'value']) {
      f[`past.${i}.${kv}`] = (past?.[`present.${i}.${kv}`] as ort.Tensor | undefined) ?? new ort.Tensor('float32', new Float32Array(0), [1, dims.heads, 0, dims.headDim]);
    }
  }
  return f;
}

for (const file of ['tiny/model.safetensors', 'tiny-bin/pytorch_model.bin']) {
  test(`first-step logits of every prompt equal transformers (${file})`, async (t) => {
    const session = await sessionFor(buildGpt2(config, await openWeightsFile(join(FIXTURES, 'gpt2', file))).graph);
    let worst = 0;
    for (let i = 0; i < fx.meta.prompts.length; i++) {
      const ids = [...fx.get(`prompt.${i}`).data].map(Number);
      const out = await session.run(feeds(ids));
      assert.deepEqual([...out.logits!.dims], [1, V]);
      assert.deepEqual([...out['present.0.key']!.dims], [1, dims.heads, ids.length, dims.headDim]);
      worst = Math.max(worst, maxAbsDiff(out.logits!.data as Float32Array, fx.f32(`logits.${i}`).subarray(0, V)));
    }
    t.diagnostic(`max abs error ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-4, `max abs error ${worst}`);
  });
}

test('KV cache: the prompt fed as head then tail (past fed back) gives the whole prompt\'s logits', async () => {
  const session = await sessionFor(buildGpt2(config, await openWeightsFile(join(FIXTURES, 'gpt2', 'tiny', 'model.safetensors'))).graph);
  const ids = [...fx.get('prompt.1').data].map(Number);
  assert.ok(ids.length >= 4);
  const whole = await session.run(feeds(ids));
  const head = await session.run(feeds(ids.slice(0, 3)));
  const tail = await session.run(feeds(ids.slice(3), head));
  assert.ok(maxAbsDiff(tail.logits!.data as Float32Array, whole.logits!.data as Float32Array) <= 1e-5);
  assert.ok(maxAbsDiff(tail['present.1.value']!.data as Float32Array, whole['present.1.value']!.data as Float32Array) <= 1e-5);
});

test('configs the builder cannot run are refused by field', () => {
  assert.throws(() => gpt2Dims({ ...config, model_type: 'llama' }), /model_type "llama"/);
  assert.throws(() => gpt2Dims({ ...config, activation_function: 'silu' }), /activation_function "silu"/);
  assert.throws(() => gpt2Dims({ ...config, scale_attn_by_inverse_layer_idx: true }), /scale_attn_by_inverse_layer_idx/);
});

test('a file with a weight the config does not know is refused, naming the weight', async () => {
  const src = await openWeightsFile(join(FIXTURES, 'gpt2', 'tiny', 'model.safetensors'));
  assert.throws(() => buildGpt2({ ...config, n_layer: 1 }, src), /weight\(s\) not used by the config: transformer\.h\.1\./);
  assert.throws(() => buildGpt2({ ...config, n_embd: 64 }, src), /transformer\.wte\.weight has shape \[420,32\]/);
});
