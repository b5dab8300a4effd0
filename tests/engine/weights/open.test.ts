import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, loadFixture } from '../../support/fixtures.ts';
import { TINY_TOKENIZER } from '../../support/tiny-models.ts';
import { openBaseModel, openControlNet, openDiffusersFolder, openSingleFileCheckpoint, openVae } from '../../../src/engine/weights/open.ts';
import { openSafetensors, writeSafetensors, type TensorToWrite } from '../../../src/engine/weights/safetensors.ts';
import { SD15_CONFIGS, SD15_CONTROLNET_CONFIG, type SdConfigs } from '../../../src/engine/weights/configs.ts';
import { ldmUnetKeyPairs } from '../../../src/engine/weights/convert-ldm-unet.ts';
import { ldmVaeKeyPairs } from '../../../src/engine/weights/convert-ldm-vae.ts';
import { clipTextKeyPairs } from '../../../src/engine/weights/convert-ldm-clip.ts';
import { ldmControlNetKeyPairs } from '../../../src/engine/weights/convert-controlnet.ts';
import type { WeightSource } from '../../../src/engine/weights/types.ts';

const W = join(FIXTURES, 'weights');
type Digest = Record<string, { shape: number[]; sha256: string }>;
const sd = JSON.parse(readFileSync(join(W, 'sd15-tiny.expected.json'), 'utf8'));
const cn = JSON.parse(readFileSync(join(W, 'control-tiny.expected.json'), 'utf8'));
const configs: SdConfigs = { unet: sd.configs.unet, vae: sd.configs.vae, textEncoder: sd.configs.text_encoder, scheduler: {} };

/** Exactly the diffusers names, shapes and float32 values (sha256 of the bytes) that diffusers produced. */
async function assertMatches(source: WeightSource, expected: Digest, what: string) {
  assert.deepEqual(source.keys().sort(), Object.keys(expected).sort(), `${what}: names`);
  for (const [name, want] of Object.entries(expected)) {
    assert.deepEqual(source.info(name)!.shape, want.shape, `${what}: shape of ${name}`);
    const data = await source.readF32(name);
    const sha = createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
    assert.equal(sha, want.sha256, `${what}: values of ${name}`);
  }
}

async function rewrite(src: string, edit: (name: string) => string | undefined): Promise<string> {
  const st = await openSafetensors(src);
  const out: Record<string, TensorToWrite> = {};
  for (const k of st.keys()) {
    const to = edit(k);
    if (to === undefined) continue;
    const raw = await st.readRaw(k);
    out[to] = { dtype: raw.dtype, shape: raw.shape, data: raw.bytes };
  }
  const path = join(mkdtempSync(join(tmpdir(), 'conv-')), 'model.safetensors');
  await writeSafetensors(path, out);
  return path;
}

test('single-file LDM checkpoint → the diffusers UNet, VAE and CLIP text encoder state dicts', async () => {
  const m = await openSingleFileCheckpoint(join(W, 'sd15-tiny.safetensors'), configs, { tokenizerDir: TINY_TOKENIZER });
  assert.equal(m.format, 'single-file');
  await assertMatches(m.unet, sd.unet, 'unet');
  await assertMatches(m.vae, sd.vae, 'vae');
  await assertMatches(m.textEncoder, sd.text_encoder, 'text encoder');
  // fp16 in the file: the raw view keeps it, and the VAE attention 1x1 convs are seen as linear weights
  assert.equal(m.unet.info('conv_in.weight')!.dtype, 'float16');
  assert.equal(m.vae.info('encoder.mid_block.attentions.0.to_q.weight')!.shape.length, 2);
  const raw = await m.vae.readRaw!('decoder.mid_block.attentions.0.to_out.0.weight');
  assert.equal(raw.shape.length, 2);
  assert.equal(m.tokenizer.padId, 999, 'the tiny vocabulary pads with its <|endoftext|>');
});

test('diffusers folder → the same names (text encoder saved without "text_model." by transformers 5)', async () => {
  const m = await openBaseModel(join(W, 'sd15-tiny-diffusers'));
  assert.equal(m.format, 'diffusers');
  await assertMatches(m.unet, sd.diffusers_folder.unet, 'unet');
  await assertMatches(m.vae, sd.diffusers_folder.vae, 'vae');
  await assertMatches(m.textEncoder, sd.diffusers_folder.text_encoder, 'text encoder');
  assert.equal(m.configs.unet.layers_per_block, 2);
  assert.equal(m.configs.scheduler._class_name, 'PNDMScheduler');
  // its tokenizer/ is what transformers 5 saves: tokenizer.json + tokenizer_config.json (tools/oracle/tokenizer_json.py)
  assert.equal(m.tokenizer.source, 'tokenizer.json');
  assert.deepEqual(m.tokenizer.encodePadded('a photo of a cat'), Array.from(loadFixture('tokenizer/tokenizer-json').get('padded.0').data as Int32Array));
});

test('ControlNet 1.1 single file (control_model.* and bare keys) → diffusers ControlNetModel names', async () => {
  const config = cn.configs.controlnet;
  const prefixed = await openControlNet(join(W, 'control-tiny.safetensors'), config);
  await assertMatches(prefixed.weights, cn.controlnet, 'controlnet');
  const bare = await rewrite(join(W, 'control-tiny.safetensors'), (k) => k.slice('control_model.'.length));
  await assertMatches((await openControlNet(bare, config)).weights, cn.controlnet, 'controlnet (bare keys)');
  await assertMatches((await openControlNet(join(W, 'control-tiny.pth'), config)).weights, cn.controlnet, 'controlnet (.pth)');
});

test('a standalone LDM VAE file converts too', async () => {
  const path = await rewrite(join(W, 'sd15-tiny.safetensors'), (k) => (k.startsWith('first_stage_model.') ? k.slice(18) : undefined));
  await assertMatches((await openVae(path, configs.vae)).weights, sd.vae, 'vae');
});

test('missing and unknown keys are named in the error', async () => {
  const path = await rewrite(join(W, 'sd15-tiny.safetensors'), (k) =>
    k === 'model.diffusion_model.out.2.bias' ? undefined : k === 'model.diffusion_model.out.0.bias' ? 'model.diffusion_model.out.9.bias' : k);
  await assert.rejects(openSingleFileCheckpoint(path, configs), (e: Error) => {
    assert.match(e.message, /UNet weights do not match its config/);
    assert.match(e.message, /missing 2 key\(s\): model\.diffusion_model\.out\.0\.bias, model\.diffusion_model\.out\.2\.bias/);
    assert.match(e.message, /unknown 1 key\(s\): model\.diffusion_model\.out\.9\.bias/);
    return true;
  });
  // A config that does not fit the file (SD 1.5's, for the tiny model) is reported, not silently mis-mapped.
  await assert.rejects(openSingleFileCheckpoint(join(W, 'sd15-tiny.safetensors')), /UNet weights do not match its config: missing \d+ key\(s\): model\.diffusion_model\.input_blocks\.4\.1\.norm\.weight/);
  await assert.rejects(openSingleFileCheckpoint(join(W, 'control-tiny.safetensors'), configs), /a ControlNet checkpoint, not a base model/);
});

test('SD 1.5 configs give exactly the diffusers names of the full-size models', async () => {
  const names = JSON.parse(readFileSync(join(W, 'sd15-keys.json'), 'utf8'));
  const ours = {
    unet: ldmUnetKeyPairs(SD15_CONFIGS.unet),
    controlnet: ldmControlNetKeyPairs(SD15_CONTROLNET_CONFIG),
    vae: ldmVaeKeyPairs(SD15_CONFIGS.vae),
    text_encoder: clipTextKeyPairs(SD15_CONFIGS.textEncoder),
  };
  for (const [part, pairs] of Object.entries(ours)) {
    assert.deepEqual(pairs.pairs.map((p) => p.diffusers).sort(), [...names[part]].sort(), part);
  }
  assert.equal(names.unet.length, 686);
});

test('diffusers-format ControlNet and VAE folders, and ControlNet 1.0 files that also hold the SD model', async () => {
  const config = cn.configs.controlnet;
  const converted = (await openControlNet(join(W, 'control-tiny.safetensors'), config)).weights;
  const dir = mkdtempSync(join(tmpdir(), 'cn-'));
  const out: Record<string, TensorToWrite> = {};
  for (const k of converted.keys()) {
    const raw = await converted.readRaw!(k);
    out[k] = { dtype: raw.dtype, shape: raw.shape, data: raw.bytes };
  }
  await writeSafetensors(join(dir, 'diffusion_pytorch_model.safetensors'), out);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  await assertMatches((await openControlNet(dir)).weights, cn.controlnet, 'controlnet folder');
  await assertMatches((await openControlNet(join(dir, 'diffusion_pytorch_model.safetensors'), config)).weights, cn.controlnet, 'controlnet diffusers file');

  // ControlNet 1.0 files hold the whole SD model beside control_model.*: those keys are not the ControlNet's.
  const st = await openSafetensors(join(W, 'control-tiny.safetensors'));
  const all: Record<string, TensorToWrite> = {};
  for (const k of st.keys()) {
    const raw = await st.readRaw(k);
    all[k] = { dtype: raw.dtype, shape: raw.shape, data: raw.bytes };
  }
  all['model.diffusion_model.input_blocks.0.0.bias'] = { dtype: 'float32', shape: [2], data: new Float32Array(2) };
  const withSd = join(dir, 'control_sd15_v10.safetensors');
  await writeSafetensors(withSd, all);
  await assertMatches((await openControlNet(withSd, config)).weights, cn.controlnet, 'controlnet 1.0 layout');

  const vaeDir = join(W, 'sd15-tiny-diffusers', 'vae');
  await assertMatches((await openVae(vaeDir)).weights, sd.diffusers_folder.vae, 'vae folder');
  // diffusers < 0.14 named the VAE attention query / key / value / proj_attn
  const old = await rewrite(join(vaeDir, 'diffusion_pytorch_model.safetensors'), (k) =>
    k.replace('.to_q.', '.query.').replace('.to_k.', '.key.').replace('.to_v.', '.value.').replace('.to_out.0.', '.proj_attn.'));
  await assertMatches((await openVae(old, sd.configs.vae)).weights, sd.diffusers_folder.vae, 'vae with old attention names');
});

test('sharded weights (*.safetensors.index.json) open as one source', async () => {
  const { openWeightsFile } = await import('../../../src/engine/weights/open.ts');
  const dir = mkdtempSync(join(tmpdir(), 'shards-'));
  await writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), { a: { dtype: 'float32', shape: [1], data: new Float32Array([1]) } });
  await writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), { b: { dtype: 'float32', shape: [1], data: new Float32Array([2]) } });
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }));
  const src = await openWeightsFile(join(dir, 'model.safetensors.index.json'));
  assert.deepEqual(src.keys().sort(), ['a', 'b']);
  assert.deepEqual(Array.from(await src.readF32('b')), [2]);
  await assert.rejects(openWeightsFile(join(dir, 'weights.onnx')), /unknown weights file type/);
});
