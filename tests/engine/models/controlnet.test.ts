import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { buildControlNet, controlnetResidualCount, controlnetScales } from '../../../src/engine/models/controlnet.ts';
import { loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { f32, sessionFor, tinyConfig, tinyWeights } from './support.ts';

const TOL = 1e-4;
const fx = loadFixture('tiny/unet_fwd');
const inputs = (scales: Float32Array) => ({
  sample: f32(fx, 'sample'), timestep: f32(fx, 'timestep'), encoder_hidden_states: f32(fx, 'encoder_hidden_states'),
  controlnet_cond: f32(fx, 'controlnet_cond'), conditioning_scales: new ort.Tensor('float32', scales, [scales.length]),
});

function check(out: ort.InferenceSession.ReturnType, prefix: string, n: number): void {
  for (let i = 0; i < n; i++) {
    const err = maxAbsDiff(out[`down_block_res_sample_${i}`]!.data as Float32Array, fx.f32(`${prefix}down_${i}`));
    assert.ok(err <= TOL, `${prefix}down ${i}: max abs err ${err}`);
  }
  const err = maxAbsDiff(out.mid_block_res_sample!.data as Float32Array, fx.f32(`${prefix}mid`));
  assert.ok(err <= TOL, `${prefix}mid: max abs err ${err}`);
}

test('scales: ones × scale, or logspace(-1, 0) × scale in guess mode, as diffusers', () => {
  const cfg = tinyConfig('controlnet');
  assert.equal(controlnetResidualCount(cfg), 7);
  assert.ok(maxAbsDiff(controlnetScales(cfg, 0.8, false), fx.f32('scales')) === 0);
  assert.ok(maxAbsDiff(controlnetScales(cfg, 0.8, true), fx.f32('scales_guess')) <= 1e-7);
  assert.deepEqual([...controlnetScales(tinyConfig('controlnet-pool'), 0.5, true)], Array(5).fill(0.5));
});

test('ControlNet equals diffusers (scale 0.8, and guess mode)', async () => {
  const cfg = tinyConfig('controlnet');
  const src = await tinyWeights('controlnet', 'diffusion_pytorch_model.fp16.safetensors');
  const s = await sessionFor(buildControlNet(cfg, src).graph);
  check(await s.run(inputs(controlnetScales(cfg, 0.8, false))), 'cn_', 6);
  check(await s.run(inputs(controlnetScales(cfg, 0.8, true))), 'cn_guess_', 6);
});

test('ControlNet with global_pool_conditions equals diffusers (spatial means)', async () => {
  const cfg = tinyConfig('controlnet-pool');
  const src = await tinyWeights('controlnet-pool');
  const s = await sessionFor(buildControlNet(cfg, src).graph);
  const out = await s.run(inputs(controlnetScales(cfg, 0.8, false)));
  assert.deepEqual(out.mid_block_res_sample!.dims, [2, 32, 1, 1]);
  check(out, 'cnpool_', 4);
});
