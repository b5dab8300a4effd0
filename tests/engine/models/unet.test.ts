import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { buildUNet } from '../../../src/engine/models/unet.ts';
import { loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { f32, sessionFor, tinyConfig, tinyWeights } from './support.ts';

const TOL = 1e-4;
const fx = loadFixture('tiny/unet_fwd');
const base = () => ({ sample: f32(fx, 'sample'), timestep: f32(fx, 'timestep') });

test('UNet (SD 1.5 layout, fp16 file) equals diffusers, 77 and 154 tokens', async () => {
  const src = await tinyWeights('sd15/unet', 'diffusion_pytorch_model.fp16.safetensors');
  const s = await sessionFor(buildUNet(tinyConfig('sd15/unet'), src).graph);
  const out = await s.run({ ...base(), encoder_hidden_states: f32(fx, 'encoder_hidden_states') });
  const err = maxAbsDiff(out.out_sample!.data as Float32Array, fx.f32('out'));
  assert.ok(err <= TOL, `max abs err ${err}`);
  const long = await s.run({ ...base(), encoder_hidden_states: f32(fx, 'encoder_hidden_states_long') });
  const errLong = maxAbsDiff(long.out_sample!.data as Float32Array, fx.f32('out_long'));
  assert.ok(errLong <= TOL, `long prompt: max abs err ${errLong}`);
});

test('UNet with ControlNet residual inputs equals diffusers', async () => {
  const src = await tinyWeights('sd15/unet', 'diffusion_pytorch_model.fp16.safetensors');
  const s = await sessionFor(buildUNet(tinyConfig('sd15/unet'), src, { controlnetInputs: true }).graph);
  const feeds: Record<string, ort.Tensor> = { ...base(), encoder_hidden_states: f32(fx, 'encoder_hidden_states') };
  for (let i = 0; i < 6; i++) feeds[`down_block_additional_residual_${i}`] = f32(fx, `cn_down_${i}`);
  feeds.mid_block_additional_residual = f32(fx, 'cn_mid');
  const out = await s.run(feeds);
  const err = maxAbsDiff(out.out_sample!.data as Float32Array, fx.f32('out_with_cn'));
  assert.ok(err <= TOL, `max abs err ${err}`);
});

test('UNet (SD 2.x layout: linear projection, per-block heads, 2 transformer layers) equals diffusers', async () => {
  const f2 = loadFixture('tiny/unet_sd2_fwd');
  const src = await tinyWeights('unet-sd2', 'diffusion_pytorch_model.fp16.safetensors');
  const s = await sessionFor(buildUNet(tinyConfig('unet-sd2'), src).graph);
  const out = await s.run({ sample: f32(f2, 'sample'), timestep: f32(f2, 'timestep'), encoder_hidden_states: f32(f2, 'encoder_hidden_states') });
  const err = maxAbsDiff(out.out_sample!.data as Float32Array, f2.f32('out'));
  assert.ok(err <= TOL, `max abs err ${err}`);
});
