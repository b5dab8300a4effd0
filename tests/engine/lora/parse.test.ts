import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemorySource } from '../../../src/engine/weights/views.ts';
import { parseLora, UnsupportedLoraError } from '../../../src/engine/lora/parse.ts';
import { combineLoras } from '../../../src/engine/lora/combine.ts';

/** A source of small tensors filled with 1, 2, 3, ... (values only matter where a test reads them). */
function source(shapes: Record<string, number[]>, values: Record<string, number[]> = {}): MemorySource {
  const t: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [k, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    t[k] = { shape, data: values[k] ? Float32Array.from(values[k]!) : Float32Array.from({ length: n }, (_, i) => i + 1) };
  }
  return MemorySource.fromF32(t);
}

const Q = 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q';

test('kohya: per-layer alpha gives each layer its own scale alpha / rank; no alpha means scale 1', async () => {
  // kohya semantics (sd-scripts, A1111). diffusers' loader instead gives attention and text-encoder layers the
  // file's most common alpha when alphas differ per layer; real kohya files use one alpha per layer kind.
  const src = source({
    'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight': [2, 3],
    'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight': [4, 2],
    'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha': [],
    'lora_te_text_model_encoder_layers_0_self_attn_k_proj.lora_down.weight': [1, 3],
    'lora_te_text_model_encoder_layers_0_self_attn_k_proj.lora_up.weight': [3, 1],
  }, { 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha': [8] });
  const p = await parseLora(src);
  assert.deepEqual([...p.targets.keys()], [`${Q}.weight`, 'text_model.encoder.layers.0.self_attn.k_proj.weight']);
  const q = p.targets.get(`${Q}.weight`)!;
  assert.equal(q.rank, 2);
  assert.equal(q.alpha, 8);
  const c = combineLoras([{ parsed: p, strength: 0.5 }]);
  // the up the graph applies: up (alpha / rank folded in by the parser) × the per-rank scale (the strength)
  const scaledUp = (t: string) => {
    const up = c.get(`${t}.lora_up`)!.data, scale = c.get(`${t}.lora_scale`)!.data;
    return [...up].map((v, i) => v * scale[i % scale.length]!);
  };
  assert.deepEqual(scaledUp(`${Q}.weight`), [1, 2, 3, 4, 5, 6, 7, 8].map((v) => v * 0.5 * 8 / 2));
  assert.deepEqual(scaledUp('text_model.encoder.layers.0.self_attn.k_proj.weight'), [0.5, 1, 1.5]);
});

test('unknown keys and a second text encoder are reported, not applied', async () => {
  const p = await parseLora(source({
    [`unet.${Q}.lora_A.weight`]: [2, 4],
    [`unet.${Q}.lora_B.weight`]: [4, 2],
    'lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight': [1, 4],
    'lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight': [4, 1],
    'lora_unet_down_blocks_0_foo.lora_norm.weight': [4],
    'emb_params': [2, 4],
    'lora_unet_input_blocks_1_0_in_layers_1.lora_down.weight': [1, 4],
  }));
  assert.deepEqual([...p.targets.keys()], [`${Q}.weight`]);
  assert.deepEqual(p.ignored.map((i) => i.key).sort(), [
    'emb_params', 'lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight',
    'lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight', 'lora_unet_down_blocks_0_foo.lora_norm.weight',
    'lora_unet_input_blocks_1_0_in_layers_1.lora_down.weight',
  ]);
  assert.match(p.ignored.find((i) => i.key === 'emb_params')!.reason, /not a LoRA tensor/);
});

test('LoHa, LoKr and DoRA files are refused (applying part of them would be wrong)', async () => {
  for (const key of ['lora_unet_mid_block_attentions_0_proj_in.hada_w1_a', 'lora_unet_mid_block_attentions_0_proj_in.lokr_w1',
    'lora_unet_mid_block_attentions_0_proj_in.dora_scale', `unet.${Q}.lora_magnitude_vector`]) {
    await assert.rejects(parseLora(source({ [key]: [2, 2] })), UnsupportedLoraError);
  }
});

test('a down without its up, or mismatched ranks, is an error', async () => {
  await assert.rejects(parseLora(source({ [`unet.${Q}.lora_A.weight`]: [2, 4] })), /has no up weight/);
  await assert.rejects(parseLora(source({ [`unet.${Q}.lora_A.weight`]: [2, 4], [`unet.${Q}.lora_B.weight`]: [4, 3] })), /rank-2 pair/);
});

test('old diffusers formats: attention processors, text-encoder to_q_lora / lora_linear_layer, unprefixed keys', async () => {
  const p = await parseLora(source({
    'down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down.weight': [1, 4],
    'down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight': [4, 1],
    'text_encoder.text_model.encoder.layers.0.self_attn.to_v_lora.down.weight': [1, 4],
    'text_encoder.text_model.encoder.layers.0.self_attn.to_v_lora.up.weight': [4, 1],
    'text_encoder.encoder.layers.1.mlp.fc2.lora_linear_layer.down.weight': [1, 4],
    'text_encoder.encoder.layers.1.mlp.fc2.lora_linear_layer.up.weight': [4, 1],
  }));
  assert.deepEqual([...p.targets.keys()], [
    'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.weight',
    'text_model.encoder.layers.0.self_attn.v_proj.weight',
    'text_model.encoder.layers.1.mlp.fc2.weight',
  ]);
});

test('PEFT: lora_alpha / r, alpha_pattern, rsLoRA (alpha / sqrt r), and diffusers metadata configs', async () => {
  const shapes = {
    'base_model.model.mid_block.attentions.0.proj_in.lora_A.weight': [4, 8],
    'base_model.model.mid_block.attentions.0.proj_in.lora_B.weight': [8, 4],
    [`base_model.model.${Q}.lora_A.default.weight`]: [4, 8],
    [`base_model.model.${Q}.lora_B.default.weight`]: [8, 4],
  };
  const p = await parseLora(source(shapes), { adapterConfig: { r: 4, lora_alpha: 8, alpha_pattern: { 'attentions.0.proj_in': 2 } } });
  assert.equal(p.targets.get('mid_block.attentions.0.proj_in.weight')!.alpha, 2);
  assert.equal(p.targets.get(`${Q}.weight`)!.alpha, 8);
  const rs = await parseLora(source(shapes), { adapterConfig: { r: 4, lora_alpha: 8, use_rslora: true } });
  assert.equal(rs.targets.get(`${Q}.weight`)!.alpha! / 4, 8 / Math.sqrt(4));
  await assert.rejects(parseLora(source(shapes), { adapterConfig: { r: 4, lora_alpha: 8, use_dora: true } }), UnsupportedLoraError);
  const meta = { lora_adapter_metadata: JSON.stringify({ 'unet.r': 4, 'unet.lora_alpha': 16, 'text_encoder.r': 1, 'text_encoder.lora_alpha': 3 }) };
  const d = await parseLora(source({
    [`unet.${Q}.lora_A.weight`]: [4, 8], [`unet.${Q}.lora_B.weight`]: [8, 4],
    'text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_A.weight': [1, 8],
    'text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_B.weight': [8, 1],
  }), { metadata: meta });
  assert.equal(d.targets.get(`${Q}.weight`)!.alpha, 16);
  assert.equal(d.targets.get('text_model.encoder.layers.0.mlp.fc1.weight')!.alpha, 3);
  // Without a config, diffusers-format branches have scale 1.
  const plain = await parseLora(source({ [`unet.${Q}.lora_A.weight`]: [4, 8], [`unet.${Q}.lora_B.weight`]: [8, 4] }));
  assert.equal(plain.targets.get(`${Q}.weight`)!.alpha, undefined);
});

test('two keys for the same weight in one file are an error', async () => {
  await assert.rejects(parseLora(source({
    [`unet.${Q}.lora_A.weight`]: [1, 4], [`unet.${Q}.lora_B.weight`]: [4, 1],
    [`unet.${Q}.lora.down.weight`]: [1, 4], [`unet.${Q}.lora.up.weight`]: [4, 1],
  })), /both give the down/);
});
