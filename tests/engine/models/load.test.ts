import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { compileNetwork, openBaseModel, openComponent, openControlNetModel, openVaeModel } from '../../../src/engine/models/load.ts';
import { ldmUnetKeyPairs } from '../../../src/engine/weights/convert-ldm-unet.ts';
import { ldmVaeKeyPairs } from '../../../src/engine/weights/convert-ldm-vae.ts';
import { ldmControlNetKeyPairs } from '../../../src/engine/weights/convert-controlnet.ts';
import { encodeSafetensors, type TensorToWrite } from '../../../src/engine/weights/safetensors.ts';
import type { WeightSource } from '../../../src/engine/weights/types.ts';
import type { KeyPair } from '../../../src/engine/weights/convert-keys.ts';
import { loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { f32, i64, scalarI64, TINY, tinyConfig } from './support.ts';
import { TINY_TOKENIZER, tinyDataDir } from '../../support/tiny-models.ts';

// The tiny model with its tokenizer (the fixture folder has none, and its text encoder is not the bundled vocabulary's size).
const tinyData = tinyDataDir();
const TINY_BASE = join(tinyData, 'models', 'base', 'tiny');
after(() => rmSync(tinyData, { recursive: true, force: true }));

const TOL = 1e-4;

async function run(path: string, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> {
  return (await ort.InferenceSession.create(path, { intraOpNumThreads: 1 })).run(feeds);
}

test('opens the tiny diffusers folder (fp16-only unet) and compiles each network once', async () => {
  const cache = mkdtempSync(join(tmpdir(), 'load-test-'));
  try {
    const base = await openBaseModel(TINY_BASE);
    assert.equal(base.format, 'diffusers');
    assert.equal(base.schedulerConfig._class_name, 'PNDMScheduler');
    assert.equal(base.unet.weights.info('conv_in.weight')?.dtype, 'float16');
    const first = await compileNetwork(cache, 'vae-decoder', base.vae);
    const second = await compileNetwork(cache, 'vae-decoder', base.vae);
    assert.equal(first.built, true);
    assert.equal(second.built, false);
    assert.equal(second.path, first.path);
    const clip = await compileNetwork(cache, 'clip-text', base.textEncoder, { lora: true });
    assert.equal((clip.info as { loraSlots: unknown[] }).loraSlots.length, 30);
    const fx = loadFixture('tiny/vae_fwd');
    const out = await run(second.path, { latent: f32(fx, 'latent') });
    assert.ok(maxAbsDiff(out.sample!.data as Float32Array, fx.f32('decoded')) <= TOL);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test('a config that does not match the weights fails naming the weights', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'load-bad-'));
  try {
    const src = join(TINY, 'unet-sd2');
    copyFileSync(join(src, 'diffusion_pytorch_model.fp16.safetensors'), join(dir, 'diffusion_pytorch_model.fp16.safetensors'));
    const cfg = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, transformer_layers_per_block: [1, 1] }));
    await assert.rejects(compileNetwork(join(dir, 'c1'), 'unet', await openComponent(dir)), /UNet: \d+ weight\(s\) not used by the config: .*transformer_blocks\.1\./);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, block_out_channels: [16, 48] }));
    await assert.rejects(compileNetwork(join(dir, 'c2'), 'unet', await openComponent(dir)), /has shape \[.*\], the config implies 48 output channels/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, class_embed_type: 'timestep' }));
    await assert.rejects(compileNetwork(join(dir, 'c3'), 'unet', await openComponent(dir)), /class_embed_type = "timestep" is not supported/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Renames diffusers weights to a single-file layout with the weights module's key pairs (inverse direction). */
async function toSingleFile(out: Record<string, TensorToWrite>, src: WeightSource, pairs: KeyPair[], prefix: string, unsqueeze = false): Promise<void> {
  for (const p of pairs) {
    const raw = await src.readRaw!(p.diffusers);
    const shape = unsqueeze && p.squeeze && raw.shape.length === 2 ? [...raw.shape, 1, 1] : raw.shape; // LDM: 1x1 conv kernels
    const data = raw.dtype === 'float16' ? new Uint16Array(raw.bytes.buffer.slice(raw.bytes.byteOffset, raw.bytes.byteOffset + raw.bytes.byteLength))
      : new Float32Array(raw.bytes.buffer.slice(raw.bytes.byteOffset, raw.bytes.byteOffset + raw.bytes.byteLength));
    out[prefix + p.original] = { dtype: raw.dtype, shape, data };
  }
}

test('single-file checkpoint, ControlNet 1.1 file and LDM VAE file of the tiny weights give the same outputs as diffusers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'load-single-'));
  try {
    const folder = await openBaseModel(TINY_BASE);
    const configs = { unet: tinyConfig('sd15/unet'), vae: tinyConfig('sd15/vae'), textEncoder: tinyConfig('sd15/text_encoder'), scheduler: folder.schedulerConfig };
    const t: Record<string, TensorToWrite> = {};
    await toSingleFile(t, folder.unet.weights, ldmUnetKeyPairs(configs.unet).pairs, 'model.diffusion_model.');
    await toSingleFile(t, folder.vae.weights, ldmVaeKeyPairs(configs.vae).pairs, 'first_stage_model.', true);
    for (const k of folder.textEncoder.weights.keys()) {
      const r = await folder.textEncoder.weights.readRaw!(k);
      t[`cond_stage_model.transformer.${k}`] = { dtype: 'float32', shape: r.shape, data: await folder.textEncoder.weights.readF32(k) };
    }
    writeFileSync(join(dir, 'tiny.safetensors'), encodeSafetensors(t));
    const cnFolder = await openControlNetModel(join(TINY, 'controlnet'));
    const c: Record<string, TensorToWrite> = {};
    await toSingleFile(c, cnFolder.weights, ldmControlNetKeyPairs(cnFolder.config as any).pairs, 'control_model.');
    writeFileSync(join(dir, 'control.safetensors'), encodeSafetensors(c));

    const single = await openBaseModel(join(dir, 'tiny.safetensors'), configs, { tokenizerDir: TINY_TOKENIZER });
    assert.equal(single.format, 'single-file');
    const cn = await openControlNetModel(join(dir, 'control.safetensors'), cnFolder.config as any);
    const cache = join(dir, 'cache');
    const u = loadFixture('tiny/unet_fwd');
    const base = { sample: f32(u, 'sample'), timestep: f32(u, 'timestep'), encoder_hidden_states: f32(u, 'encoder_hidden_states') };
    const unetOut = await run((await compileNetwork(cache, 'unet', single.unet)).path, base);
    assert.ok(maxAbsDiff(unetOut.out_sample!.data as Float32Array, u.f32('out')) <= TOL);
    const scales = new ort.Tensor('float32', u.f32('scales'), [7]);
    const cnOut = await run((await compileNetwork(cache, 'controlnet', cn)).path, { ...base, controlnet_cond: f32(u, 'controlnet_cond'), conditioning_scales: scales });
    assert.ok(maxAbsDiff(cnOut.mid_block_res_sample!.data as Float32Array, u.f32('cn_mid')) <= TOL);
    assert.ok(maxAbsDiff(cnOut.down_block_res_sample_5!.data as Float32Array, u.f32('cn_down_5')) <= TOL);
    const v = loadFixture('tiny/vae_fwd');
    const enc = await run((await compileNetwork(cache, 'vae-encoder', single.vae)).path, { sample: f32(v, 'image') });
    assert.ok(maxAbsDiff(enc.mean!.data as Float32Array, v.f32('mean')) <= TOL);
    const dec = await run((await compileNetwork(cache, 'vae-decoder', single.vae)).path, { latent: f32(v, 'latent') });
    assert.ok(maxAbsDiff(dec.sample!.data as Float32Array, v.f32('decoded')) <= TOL);
    // a stand-alone VAE file in LDM names without prefix (the vae-ft-mse-840000 layout)
    const vt: Record<string, TensorToWrite> = {};
    await toSingleFile(vt, folder.vae.weights, ldmVaeKeyPairs(configs.vae).pairs, '', true);
    writeFileSync(join(dir, 'vae.safetensors'), encodeSafetensors(vt));
    const vae = await openVaeModel(join(dir, 'vae.safetensors'), configs.vae);
    const dec2 = await run((await compileNetwork(join(dir, 'cache-vae'), 'vae-decoder', vae)).path, { latent: f32(v, 'latent') });
    assert.ok(maxAbsDiff(dec2.sample!.data as Float32Array, v.f32('decoded')) <= TOL);
    const cl = loadFixture('tiny/clip_fwd');
    const clipOut = await run((await compileNetwork(cache, 'clip-text', single.textEncoder)).path, { input_ids: i64(cl, 'input_ids'), skip: scalarI64(1) });
    assert.ok(maxAbsDiff(clipOut.hidden_states!.data as Float32Array, cl.f32('skip1')) <= TOL);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
