// Single-file checkpoints as users have them (reported: every single file was taken for SD 1.5, so a 9-channel
// inpainting file could not load). What the tensors and a sidecar config say is inferred as diffusers'
// from_single_file (and A1111, for the sidecar) infer it; fixtures: tools/oracle/single_file.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from '../../support/fixtures.ts';
import { TINY_TOKENIZER } from '../../support/tiny-models.ts';
import { openSingleFileCheckpoint } from '../../../src/engine/weights/open.ts';
import { emaName, UnsupportedCheckpoint } from '../../../src/engine/weights/single-file-config.ts';
import { openSafetensors, writeSafetensors, type TensorToWrite } from '../../../src/engine/weights/safetensors.ts';
import { SD15_CONFIGS, type SdConfigs } from '../../../src/engine/weights/configs.ts';
import type { WeightSource } from '../../../src/engine/weights/types.ts';
import { ModelFiles } from '../../../src/engine/pipeline/model-files.ts';
import { EngineError } from '../../../src/engine/errors.ts';

const W = join(FIXTURES, 'weights');
const SF = join(W, 'single-file');
type Digest = Record<string, { shape: number[]; sha256: string }>;
const expected = JSON.parse(readFileSync(join(SF, 'expected.json'), 'utf8'));
const tinySd = JSON.parse(readFileSync(join(W, 'sd15-tiny.expected.json'), 'utf8'));
const tiny = (e: any): SdConfigs => ({ unet: e.configs.unet, vae: e.configs.vae, textEncoder: e.configs.text_encoder, scheduler: { ...SD15_CONFIGS.scheduler } });
const opts = { tokenizerDir: TINY_TOKENIZER };

async function assertMatches(source: WeightSource, want: Digest, what: string) {
  assert.deepEqual(source.keys().sort(), Object.keys(want).sort(), `${what}: names`);
  for (const [name, w] of Object.entries(want)) {
    const data = await source.readF32(name);
    assert.equal(createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex'), w.sha256, `${what}: ${name}`);
  }
}

/** A copy of a safetensors file with keys renamed (undefined drops) and extra tensors added. */
async function rewrite(src: string, dir: string, name: string, rename: (k: string) => string | undefined, extra: Record<string, TensorToWrite> = {}): Promise<string> {
  const st = await openSafetensors(src);
  const out: Record<string, TensorToWrite> = {};
  for (const k of st.keys()) {
    const to = rename(k);
    if (to === undefined) continue;
    const raw = await st.readRaw(k);
    out[to] = { dtype: raw.dtype, shape: raw.shape, data: raw.bytes };
  }
  const path = join(dir, name);
  await writeSafetensors(path, { ...out, ...extra });
  return path;
}

test('the reported case: a 9-channel inpainting single file is an SD 1.x inpainting model, as diffusers infers (and loads) it', async () => {
  const e = expected['sd1-inpainting'];
  assert.equal(e.diffusers_model_type, 'inpainting');
  assert.equal(e.loaded_by_diffusers.unet_in_channels, 9);
  // the base configs say 4 input channels: the tensors decide
  const m = await openSingleFileCheckpoint(join(SF, 'sd1-inpainting.safetensors'), { ...tiny(e), unet: { ...e.configs.unet, in_channels: 4 } }, opts);
  assert.equal(m.findings!.kind, 'sd1-inpainting');
  assert.equal(m.configs.unet.in_channels, 9);
  assert.equal(m.findings!.predictionType, 'epsilon');
  assert.deepEqual(m.findings!.dtypes, ['float16']);
  await assertMatches(m.unet, e.unet, 'unet');
  await assertMatches(m.vae, e.vae, 'vae');
  await assertMatches(m.textEncoder, e.text_encoder, 'text encoder');
});

test('v-prediction with a sidecar .yaml (A1111): the UNet config diffusers reads from it, parameterization v, bf16 weights', async () => {
  const e = expected['sd1-vpred'];
  // a base whose UNet is SD 1.5's: the sidecar's unet_config must replace it
  const base = { ...tiny(e), unet: { ...SD15_CONFIGS.unet, norm_num_groups: e.configs.unet.norm_num_groups } };
  const m = await openSingleFileCheckpoint(join(SF, 'sd1-vpred.safetensors'), base, opts);
  assert.equal(m.findings!.sidecar, 'sd1-vpred.yaml');
  assert.equal(m.findings!.predictionType, 'v_prediction');
  assert.equal(m.configs.scheduler.prediction_type, 'v_prediction');
  assert.deepEqual(m.findings!.dtypes, ['bfloat16']);
  const fromLdm = e.unet_config_from_ldm;
  for (const k of ['in_channels', 'out_channels', 'block_out_channels', 'layers_per_block', 'down_block_types', 'up_block_types',
    'cross_attention_dim', 'attention_head_dim', 'use_linear_projection', 'transformer_layers_per_block']) {
    assert.deepEqual(m.configs.unet[k], fromLdm[k], `unet ${k} as diffusers' create_unet_diffusers_config_from_ldm`);
  }
  await assertMatches(m.unet, e.unet, 'unet');
  await assertMatches(m.vae, e.vae, 'vae');
});

test('EMA-only files, EMA copies beside the weights, and a .json sidecar', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sf-'));
  try {
    const src = join(W, 'sd15-tiny.safetensors');
    const base = tiny(tinySd);
    // only the flattened EMA names (model_ema.diffusion_model<path>): the EMA weights are used
    const emaOnly = await rewrite(src, dir, 'ema-only.safetensors', (k) => (k.startsWith('model.diffusion_model.') ? emaName(k) : k));
    const a = await openSingleFileCheckpoint(emaOnly, base, opts);
    assert.equal(a.findings!.unetWeights, 'ema-only');
    await assertMatches(a.unet, tinySd.unet, 'ema-only unet');
    // EMA copies (other values) beside the weights: the weights are used, as diffusers' default extract_ema=False
    const st = await openSafetensors(src);
    const copies: Record<string, TensorToWrite> = {};
    for (const k of st.keys().filter((x) => x.startsWith('model.diffusion_model.'))) {
      const raw = await st.readRaw(k);
      const flipped = Uint8Array.from(raw.bytes, (b, i) => (i % 2 === 1 ? b ^ 0x80 : b)); // fp16 sign flip
      copies[emaName(k)] = { dtype: raw.dtype, shape: raw.shape, data: flipped };
    }
    assert.ok(Object.keys(copies).length > 100);
    const both = await rewrite(src, dir, 'both.safetensors', (k) => k, copies);
    const b = await openSingleFileCheckpoint(both, base, opts);
    assert.equal(b.findings!.unetWeights, 'model (EMA copies ignored)');
    await assertMatches(b.unet, tinySd.unet, 'unet beside EMA copies');
    // a .json sidecar in the LDM layout
    copyFileSync(src, join(dir, 'vjson.safetensors'));
    writeFileSync(join(dir, 'vjson.json'), JSON.stringify({ model: { params: { parameterization: 'v', linear_end: 0.0125 } } }));
    const c = await openSingleFileCheckpoint(join(dir, 'vjson.safetensors'), base, opts);
    assert.equal(c.findings!.sidecar, 'vjson.json');
    assert.equal(c.configs.scheduler.prediction_type, 'v_prediction');
    assert.equal(c.configs.scheduler.beta_end, 0.0125);
    assert.deepEqual(c.configs.unet, base.unet, 'no unet_config: the base UNet stays');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('anything else is refused saying what was found; through the models folder it is a 422 naming the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sf-bad-'));
  try {
    const t = (shape: number[]): TensorToWrite => ({ dtype: 'float16', shape, data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * 2) });
    const files: [string, Record<string, TensorToWrite>, RegExp][] = [
      ['sdxl.safetensors', { 'conditioner.embedders.0.transformer.text_model.final_layer_norm.weight': t([4]), 'model.diffusion_model.input_blocks.0.0.weight': t([4, 4, 3, 3]) }, /an SDXL checkpoint/],
      // SD 2.x files load (single-file-sd2.test.ts); one whose OpenCLIP text encoder is not there says what is missing
      ['sd2.safetensors', { 'cond_stage_model.model.ln_final.weight': t([4]), 'model.diffusion_model.input_blocks.0.0.weight': t([64, 4, 3, 3]), 'model.diffusion_model.out.2.weight': t([4, 64, 3, 3]),
        'model.diffusion_model.input_blocks.1.0.out_layers.3.weight': t([64, 64, 3, 3]), 'model.diffusion_model.input_blocks.1.1.proj_in.weight': t([64, 64]),
        'model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight': t([64, 1024]) }, /its OpenCLIP text encoder has no cond_stage_model\.model\.token_embedding\.weight/],
      ['lora.safetensors', { 'lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight': t([4, 4]) }, /a LoRA, not a base model/],
      ['cn.safetensors', { 'control_model.input_hint_block.0.weight': t([4, 3, 3, 3]) }, /a ControlNet checkpoint/],
      ['odd.safetensors', { 'model.diffusion_model.input_blocks.0.0.weight': t([4, 6, 3, 3]) }, /takes 6 input channels/],
    ];
    for (const [name, tensors, msg] of files) {
      await writeSafetensors(join(dir, name), tensors);
      await assert.rejects(openSingleFileCheckpoint(join(dir, name)), (e: unknown) => e instanceof UnsupportedCheckpoint && msg.test((e as Error).message));
    }
    const data = join(dir, 'data');
    const models = join(data, 'models', 'base');
    (await import('node:fs')).mkdirSync(models, { recursive: true });
    copyFileSync(join(dir, 'sdxl.safetensors'), join(models, 'my-xl.safetensors'));
    await assert.rejects(new ModelFiles(join(data, 'models'), join(data, 'cache')).base('my-xl'), (e: unknown) => {
      assert.ok(e instanceof EngineError && e.code === 'bad_model_file', String(e));
      assert.equal(e.message, 'model_id: the model file base/my-xl.safetensors cannot be used: an SDXL checkpoint (conditioner.embedders.*); only SD 1.x and SD 2.x are supported');
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
