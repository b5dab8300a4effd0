import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture, maxAbsDiff, maxRelDiff } from '../../support/fixtures.ts';
import { TorchGenerator } from '../../../src/engine/random/torch-generator.ts';
import {
  KARRAS_VE_DEFAULTS, karrasVeAddNoiseToInput, karrasVeSchedule, karrasVeStep, karrasVeStepCorrect,
} from '../../../src/engine/schedulers/karras-ve.ts';
import { createScheduler } from '../../../src/engine/schedulers/registry.ts';
import { img2imgStart } from '../../../src/engine/schedulers/img2img.ts';
import { idealGaussianDenoiser, idealPointDenoiser, meanStd } from './ideal-denoiser.ts';

const fx = loadFixture('schedulers/trajectories');
const SD15 = fx.meta.sd15_config;

test('KarrasVe primitives equal diffusers: schedule, add_noise_to_input, step, step_correct', () => {
  assert.ok(maxRelDiff(karrasVeSchedule(KARRAS_VE_DEFAULTS, 10), fx.f32('karras_ve.schedule'), 1e-6) <= 1e-5);
  const m = fx.meta.karras_ve as { sigma: number; sigma_hat: number; sigma_prev: number };
  const xa = fx.f32('fake.xa');
  const xb = fx.f32('fake.xb');
  const { sampleHat, sigmaHat } = karrasVeAddNoiseToInput(KARRAS_VE_DEFAULTS, 10, xa, m.sigma, new TorchGenerator(11));
  assert.ok(Math.abs(sigmaHat - m.sigma_hat) <= 1e-12 * m.sigma_hat);
  assert.ok(maxRelDiff(sampleHat, fx.f32('karras_ve.sample_hat'), 1) <= 1e-5);
  const { prev, derivative } = karrasVeStep(xb, sigmaHat, m.sigma_prev, fx.f32('karras_ve.sample_hat'));
  assert.ok(maxRelDiff(prev, fx.f32('karras_ve.prev'), 1) <= 1e-5);
  assert.ok(maxRelDiff(derivative, fx.f32('karras_ve.derivative'), 1) <= 1e-5);
  const half = xb.map((v) => v * 0.5);
  const corrected = karrasVeStepCorrect(half, sigmaHat, m.sigma_prev, fx.f32('karras_ve.sample_hat'), fx.f32('karras_ve.prev'), fx.f32('karras_ve.derivative'));
  assert.ok(maxRelDiff(corrected, fx.f32('karras_ve.corrected'), 1) <= 1e-5);
});

function sample(steps: number, target: Float32Array, seed: number) {
  const s = createScheduler('KarrasVeScheduler', SD15);
  s.setTimesteps(steps);
  const model = idealPointDenoiser(SD15, target);
  const g = new TorchGenerator(seed);
  let x: Float32Array = g.randn([target.length]).map((v) => v * s.initNoiseSigma);
  for (const t of s.timesteps) x = s.step(model(s.scaleModelInput(x, t), t), t, x, { generator: g });
  return { x, s };
}

test('KarrasVe sampler (Algorithm 2 on the VP model as VE) lands on the data with an exact denoiser', () => {
  const target = new TorchGenerator(3).randn([256]).map((v) => Math.tanh(v));
  for (const steps of [10, 30]) {
    const { x, s } = sample(steps, target, 5);
    assert.equal(s.timesteps.length, 2 * steps - 1, 'predictor + corrector per step, last step single');
    assert.equal(s.order, 2);
    const err = maxAbsDiff(x, target);
    assert.ok(err < 2e-2, `${steps} steps: max error ${err}`);
  }
  // stochastic (churn) and seeded: same seed same result, other seed differs (before the data is reached)
  const a = sample(10, target, 5).x;
  const b = sample(10, target, 5).x;
  assert.equal(maxAbsDiff(a, b), 0);
});

test('KarrasVe img2img starts at a predictor evaluation and keeps the source when the denoiser is exact', () => {
  const target = new Float32Array(64).map((_, i) => Math.sin(i));
  const s = createScheduler('KarrasVeScheduler', SD15);
  s.setTimesteps(30);
  const start = img2imgStart(s, 30, 0.55);
  assert.equal(start.numSteps, 16);
  assert.equal(start.timesteps.length, 2 * 16 - 1);
  const g = new TorchGenerator(9);
  let x = s.addNoise(target, g.randn([64]), start.latentTimestep);
  const model = idealPointDenoiser(SD15, target);
  for (const t of start.timesteps) x = s.step(model(s.scaleModelInput(x, t), t), t, x, { generator: g });
  assert.ok(maxAbsDiff(x, target) < 2e-2);
});

test('KarrasVe sampler turns noise into the data distribution (exact Gaussian denoiser, 50 steps)', () => {
  const s = createScheduler('KarrasVeScheduler', SD15);
  s.setTimesteps(50);
  const model = idealGaussianDenoiser(SD15, 0.3, 0.5);
  const g = new TorchGenerator(1);
  let x: Float32Array = g.randn([8192]).map((v) => v * s.initNoiseSigma);
  for (const t of s.timesteps) x = s.step(model(s.scaleModelInput(x, t), t), t, x, { generator: g });
  const { mean, std } = meanStd(x);
  assert.ok(Math.abs(mean - 0.3) < 0.02, `mean ${mean}`);
  assert.ok(Math.abs(std - 0.5) < 0.025, `std ${std}`);
});
