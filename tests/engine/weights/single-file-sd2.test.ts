// SD 2.x single files (original LDM layout, OpenCLIP ViT-H text encoder under cond_stage_model.model.*), once refused
// with a 422: loaded and run as diffusers' from_single_file loads and runs them (tools/oracle/single_file_sd2.py,
// with original_config = the sidecar .yaml and a local config folder). The committed tiny file's token embedding has
// 1000 rows; the model is that embedding tiled to CLIP's 49408 rows (the oracle ran diffusers on the tiled file), so
// the server's bundled CLIP vocabulary, padded with "!" as SD 2's tokenizer pads, is what tokenizes here too.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { FIXTURES, loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';
import { sessionFor } from '../models/support.ts';
import { buildClipText } from '../../../src/engine/models/clip-text.ts';
import { openSingleFileCheckpoint } from '../../../src/engine/weights/open.ts';
import { inferSingleFileConfigs, UnsupportedCheckpoint } from '../../../src/engine/weights/single-file-config.ts';
import { openSafetensors, writeSafetensors, type TensorToWrite } from '../../../src/engine/weights/safetensors.ts';
import { convertKeys } from '../../../src/engine/weights/convert-keys.ts';
import { ldmUnetKeyPairs } from '../../../src/engine/weights/convert-ldm-unet.ts';
import { ldmVaeKeyPairs } from '../../../src/engine/weights/convert-ldm-vae.ts';
import { isUnusedOpenClipKey, OPEN_CLIP_PREFIX, openClipTextKeyPairs } from '../../../src/engine/weights/convert-open-clip.ts';
import { SD15_CONFIGS } from '../../../src/engine/weights/configs.ts';
import type { TensorInfo, WeightSource } from '../../../src/engine/weights/types.ts';
import { ModelFiles } from '../../../src/engine/pipeline/model-files.ts';
import { Pipeline } from '../../../src/engine/pipeline/pipeline.ts';
import { EngineError } from '../../../src/engine/errors.ts';
import type { GenerateOptions } from '../../../src/engine/pipeline/types.ts';

const SF = join(FIXTURES, 'weights', 'single-file');
const expected = JSON.parse(readFileSync(join(SF, 'sd2-vpred.expected.json'), 'utf8'));
const fx = loadFixture('weights/single-file/sd2-vpred');
const TOKEN_EMBEDDING = 'cond_stage_model.model.token_embedding.weight';
type Digest = Record<string, { shape: number[]; sha256: string }>;

const tmp = mkdtempSync(join(tmpdir(), 'sd2-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The committed file with its token embedding's rows tiled to `vocab` rows (row i = row i mod rows), plus `extra` tensors. */
async function tileTokenEmbedding(dest: string, vocab: number, extra: Record<string, TensorToWrite> = {}): Promise<string> {
  const st = await openSafetensors(join(SF, 'sd2-vpred.safetensors'));
  const out: Record<string, TensorToWrite> = {};
  for (const k of st.keys()) {
    const raw = await st.readRaw(k);
    if (k !== TOKEN_EMBEDDING) {
      out[k] = { dtype: raw.dtype, shape: raw.shape, data: raw.bytes };
      continue;
    }
    const [rows, width] = raw.shape as [number, number];
    const rowBytes = raw.bytes.byteLength / rows;
    const data = new Uint8Array(vocab * rowBytes);
    for (let i = 0; i < vocab; i++) data.set(raw.bytes.subarray((i % rows) * rowBytes, ((i % rows) + 1) * rowBytes), i * rowBytes);
    out[k] = { dtype: raw.dtype, shape: [vocab, width], data };
  }
  await writeSafetensors(dest, { ...out, ...extra });
  return dest;
}

async function assertMatches(source: WeightSource, want: Digest, what: string) {
  assert.deepEqual(source.keys().sort(), Object.keys(want).sort(), `${what}: names`);
  for (const [name, w] of Object.entries(want)) {
    const data = await source.readF32(name);
    assert.deepEqual(source.info(name)!.shape, w.shape, `${what}: ${name} shape`);
    assert.equal(createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex'), w.sha256, `${what}: ${name}`);
  }
}

// models/base/tiny-sd2.safetensors + tiny-sd2.yaml, as an A1111 user keeps them (beside the tiny SD 1.x models)
const data = tinyDataDir();
after(() => rmSync(data, { recursive: true, force: true }));
const baseDir = join(data, 'models', 'base');
const SD2 = await tileTokenEmbedding(join(baseDir, 'tiny-sd2.safetensors'), fx.meta.vocab_size);
copyFileSync(join(SF, 'sd2-vpred.yaml'), join(baseDir, 'tiny-sd2.yaml'));

test('an SD 2.x single file with its .yaml loads as diffusers loads it: OpenCLIP text encoder, UNet and VAE from the sidecar, v-prediction', async () => {
  const m = await openSingleFileCheckpoint(SD2);
  const f = m.findings!;
  assert.deepEqual([f.kind, f.textEncoder, f.padToken, f.predictionType, f.predictionTypeFrom, f.sidecar], ['sd2', 'open-clip', '!', 'v_prediction', 'sidecar', 'tiny-sd2.yaml']);
  assert.deepEqual(f.dtypes, ['float16']);
  const want = expected.configs;
  for (const k of ['in_channels', 'out_channels', 'block_out_channels', 'layers_per_block', 'down_block_types', 'up_block_types',
    'cross_attention_dim', 'attention_head_dim', 'use_linear_projection', 'transformer_layers_per_block', 'norm_num_groups']) {
    assert.deepEqual(m.configs.unet[k], want.unet[k], `unet ${k}`);
  }
  for (const k of ['in_channels', 'out_channels', 'block_out_channels', 'layers_per_block', 'latent_channels', 'norm_num_groups', 'scaling_factor']) {
    assert.deepEqual(m.configs.vae[k], want.vae[k], `vae ${k}`);
  }
  for (const k of ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'max_position_embeddings', 'hidden_act', 'layer_norm_eps']) {
    assert.deepEqual(m.configs.textEncoder[k], want.text_encoder[k], `text encoder ${k}`);
  }
  for (const k of ['prediction_type', 'beta_start', 'beta_end', 'beta_schedule', 'num_train_timesteps', 'steps_offset', 'set_alpha_to_one']) {
    assert.deepEqual(m.configs.scheduler[k], want.scheduler[k], `scheduler ${k}`);
  }
  await assertMatches(m.unet, expected.unet, 'unet');
  await assertMatches(m.vae, expected.vae, 'vae');
  await assertMatches(m.textEncoder, expected.text_encoder, 'text encoder (q/k/v split from in_proj, last resblock left out)');
  // SD 2's tokenizer pads with "!" (id 0), not <|endoftext|> (49407): the same ids diffusers' tokenizer gave
  assert.equal(m.tokenizer.padId, expected.tokenizer.pad_token_id);
  const ids = fx.get('ids').data as BigInt64Array;
  assert.deepEqual([m.tokenizer.encodePadded(fx.meta.prompt), m.tokenizer.encodePadded(fx.meta.negative_prompt)].flat(), [...ids].map(Number));
});

test('the converted OpenCLIP text encoder gives diffusers\' hidden states (penultimate layer, ln_final)', async (t) => {
  const m = await openSingleFileCheckpoint(SD2);
  const s = await sessionFor(buildClipText(m.configs.textEncoder, m.textEncoder).graph);
  const ids = fx.get('ids');
  const out = await s.run({ input_ids: new ort.Tensor('int64', ids.data as BigInt64Array, ids.shape), skip: new ort.Tensor('int64', BigInt64Array.of(0n), []) });
  const d = maxAbsDiff(out.hidden_states!.data as Float32Array, fx.f32('hidden'));
  t.diagnostic(`hidden states: max abs error ${d.toExponential(2)}`);
  assert.ok(d <= 1e-4, `max abs error ${d}`); // the CLIP text encoder's tolerance (tests/engine/models/clip-text.test.ts)
});

const pipeline = await Pipeline.create({ dataDir: data, threads: 1 });
const { width, height, prompt, negative_prompt, steps, seed, guidance, scheduler } = fx.meta;
const request: GenerateOptions = {
  modelId: 'tiny-sd2', prompt, negativePrompt: negative_prompt, width, height, controls: [], autoHint: false, guessMode: false,
  samples: 1, scheduler, steps, guidanceScale: guidance, strength: 1, seed, tomesd: false, useKarrasSigmas: false, algorithmType: 'none',
  vae: null, loras: [], clipSkip: 1, safetyChecker: false, enhancePrompt: false, multiLingual: false, upscale: 1,
};

test('generation from the SD 2.x single file (through the models folder) equals diffusers\' from_single_file pipeline', async (t) => {
  const { pixels, applied } = await pipeline.generateRaw(request);
  assert.equal(applied.mode, 'txt2img');
  const plane = width * height;
  const np = new Float32Array(plane * 3); // [1,3,H,W] in [-1,1] → [H,W,3] in [0,1], as diffusers' output_type="np"
  for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) np[i * 3 + c] = Math.min(1, Math.max(0, Math.fround(Math.fround(pixels[c * plane + i]! / 2) + 0.5)));
  const d = maxAbsDiff(np, fx.f32('image'));
  t.diagnostic(`image: max abs error ${d.toExponential(2)}`);
  assert.ok(d <= 2e-3, `max abs error ${d}`); // the pipeline cases' tolerance on [0,1] pixels
});

test('a ControlNet made for another text width (the tiny SD 1.x one) with the SD 2.x model is a 400 naming controlnet_model', async () => {
  const hint = { width, height, data: new Uint8Array(width * height * 3).fill(128) };
  await assert.rejects(pipeline.generateRaw({ ...request, controls: [{ type: 'canny', image: hint, scale: 1 }] }), (e: unknown) => {
    assert.ok(e instanceof EngineError && e.code === 'bad_input' && e.field === 'controlnet_model', String(e));
    assert.equal(e.message, 'controlnet_model: canny takes 32-wide text embeddings but model_id tiny-sd2 gives 128-wide ones; use a ControlNet made for that base model');
    return true;
  });
});

test('a LoRA made for another base model (the tiny SD 1.x one) with the SD 2.x model is a 400 naming lora_model', async () => {
  await assert.rejects(pipeline.generateRaw({ ...request, loras: [{ id: 'lora-a', strength: 1 }] }), (e: unknown) => {
    assert.ok(e instanceof EngineError && e.code === 'bad_input' && e.field === 'lora_model', String(e));
    assert.match(e.message, /^lora_model: lora-a does not fit model_id tiny-sd2's text encoder \(a LoRA for another base model\?\): LoRA for text_model\.encoder\.layers\.0\.self_attn\.q_proj\.weight has down \[4,32\]/);
    return true;
  });
});

/** The names and shapes of a full-size SD 2.1 single file, without data (only configs and key conversion read them). */
class ShapesOnly implements WeightSource {
  constructor(private readonly shapes: Record<string, number[]>) {}
  keys() { return Object.keys(this.shapes); }
  info(name: string): TensorInfo | undefined { return this.shapes[name] && { dtype: 'float16', shape: this.shapes[name]! }; }
  readF32(): Promise<Float32Array> { throw new Error('no data'); }
  fingerprint() { return 'shapes'; }
}

test('without a sidecar: a full-size SD 2.1 file gets stabilityai/stable-diffusion-2-1\'s configs (v_prediction), a 9-channel one SD 2 inpainting\'s (epsilon)', () => {
  const sd21 = JSON.parse(readFileSync(join(SF, 'sd21-keys.json'), 'utf8'));
  assert.equal(sd21.diffusers_model_type, 'v2');
  const file = new ShapesOnly(sd21.shapes);
  const { configs, findings } = inferSingleFileConfigs(file);
  assert.deepEqual([findings.kind, findings.predictionType, findings.predictionTypeFrom, findings.padToken], ['sd2', 'v_prediction', 'stabilityai/stable-diffusion-2-1 default', '!']);
  const u = configs.unet;
  assert.deepEqual([u.block_out_channels, u.attention_head_dim, u.cross_attention_dim, u.use_linear_projection, u.upcast_attention, u.layers_per_block, u.transformer_layers_per_block],
    [[320, 640, 1280, 1280], [5, 10, 20, 20], 1024, true, true, 2, 1]);
  assert.deepEqual(u.down_block_types, ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D']);
  assert.deepEqual(u.up_block_types, ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D']);
  const t = configs.textEncoder;
  assert.deepEqual([t.vocab_size, t.hidden_size, t.intermediate_size, t.num_hidden_layers, t.num_attention_heads, t.hidden_act, t.projection_dim],
    [49408, 1024, 4096, 23, 16, 'gelu', 1024]);
  assert.deepEqual(configs.vae, SD15_CONFIGS.vae);
  assert.equal(configs.scheduler.prediction_type, 'v_prediction');
  // every tensor is used by these configs (none missing, none unknown besides the documented leftovers)
  convertKeys(file, ldmUnetKeyPairs(u).pairs, { component: 'UNet', file: 'sd21', prefix: 'model.diffusion_model.' });
  convertKeys(file, ldmVaeKeyPairs(configs.vae).pairs, { component: 'VAE', file: 'sd21', prefix: 'first_stage_model.' });
  const te = convertKeys(file, openClipTextKeyPairs(t).pairs, { component: 'text', file: 'sd21', prefix: OPEN_CLIP_PREFIX, ignore: isUnusedOpenClipKey(t) });
  assert.deepEqual(te.info('text_model.encoder.layers.22.self_attn.v_proj.weight')?.shape, [1024, 1024]);
  assert.equal(te.info('text_model.encoder.layers.23.self_attn.v_proj.weight'), undefined);

  const convIn = 'model.diffusion_model.input_blocks.0.0.weight';
  const inpainting = inferSingleFileConfigs(new ShapesOnly({ ...sd21.shapes, [convIn]: [320, 9, 3, 3] }));
  assert.deepEqual([inpainting.findings.kind, inpainting.findings.predictionType, inpainting.findings.predictionTypeFrom],
    ['sd2-inpainting', 'epsilon', 'stabilityai/stable-diffusion-2-inpainting default']);
  assert.deepEqual([inpainting.configs.unet.in_channels, inpainting.configs.unet.upcast_attention], [9, false]);
  // a sidecar without parameterization (v2-inference.yaml, SD 2 base 512) means epsilon, as A1111 builds it
  const base512 = inferSingleFileConfigs(file, undefined, { name: 'v2-inference.yaml', config: { model: { params: { linear_start: 0.00085 } } } });
  assert.deepEqual([base512.findings.predictionType, base512.findings.predictionTypeFrom], ['epsilon', 'sidecar']);
});

test('the tiny SD 2.x file without its .yaml is a 422 that says why (widths not multiples of 64-channel heads) and what to do', async () => {
  const dir = join(tmp, 'noyaml', 'models', 'base');
  mkdirSync(dir, { recursive: true });
  copyFileSync(SD2, join(dir, 'bare.safetensors'));
  await assert.rejects(new ModelFiles(join(tmp, 'noyaml', 'models'), join(tmp, 'noyaml', 'cache')).base('bare'), (e: unknown) => {
    assert.ok(e instanceof EngineError && e.code === 'bad_model_file', String(e));
    assert.equal(e.message, "model_id: the model file base/bare.safetensors cannot be used: its UNet blocks are 32, 64 wide, not multiples of SD 2.x's 64-channel attention heads; put its LDM .yaml beside it (with unet_config num_head_channels)");
    return true;
  });
});

test('files that are neither SD 1.x nor SD 2.x, or SD 2.x with unknown keys, are 422s saying what was found', async () => {
  const models = join(tmp, 'bad', 'models');
  mkdirSync(join(models, 'base'), { recursive: true });
  const t = (shape: number[]): TensorToWrite => ({ dtype: 'float16', shape, data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * 2) });
  const files = new ModelFiles(models, join(tmp, 'bad', 'cache'));
  const cases: [string, () => Promise<unknown>, string][] = [
    ['unknown', () => writeSafetensors(join(models, 'base', 'unknown.safetensors'), { 'net.0.weight': t([4, 4]), 'net.0.bias': t([4]) }),
      'model_id: the model file base/unknown.safetensors cannot be used: not an SD single-file checkpoint (no model.diffusion_model.* or model_ema.* UNet keys; 2 tensors, e.g. net.0.weight, net.0.bias)'],
    ['no-text', () => writeSafetensors(join(models, 'base', 'no-text.safetensors'), { 'model.diffusion_model.input_blocks.0.0.weight': t([32, 4, 3, 3]) }),
      'model_id: the model file base/no-text.safetensors cannot be used: it has a UNet but no text encoder this server knows (neither cond_stage_model.transformer.* (SD 1.x) nor cond_stage_model.model.* (SD 2.x)); cond_stage_model keys found: none'],
    ['extra', async () => { await tileTokenEmbedding(join(models, 'base', 'extra.safetensors'), 1000, { 'cond_stage_model.model.visual.proj': t([4, 4]) }); copyFileSync(join(SF, 'sd2-vpred.yaml'), join(models, 'base', 'extra.yaml')); },
      'model_id: the model file base/extra.safetensors cannot be used: base/extra.safetensors: the OpenCLIP text encoder weights do not match its config: unknown 1 key(s): cond_stage_model.model.visual.proj'],
  ];
  for (const [id, write, message] of cases) {
    await write();
    await assert.rejects(files.base(id), (e: unknown) => {
      assert.ok(e instanceof EngineError && e.code === 'bad_model_file', String(e));
      assert.equal(e.message, message);
      return true;
    });
  }
  // a depth model (5 input channels) is named as such
  const st = new ShapesOnly({ 'model.diffusion_model.input_blocks.0.0.weight': [320, 5, 3, 3], 'cond_stage_model.model.ln_final.weight': [1024] });
  assert.throws(() => inferSingleFileConfigs(st), (e: unknown) => e instanceof UnsupportedCheckpoint && /takes 5 input channels \(an SD 2 depth model\); SD 2\.x takes 4/.test((e as Error).message));
});
