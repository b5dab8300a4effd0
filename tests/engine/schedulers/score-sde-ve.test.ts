import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture, maxRelDiff } from '../../support/fixtures.ts';
import { TorchGenerator } from '../../../src/engine/random/torch-generator.ts';
import {
  SCORE_SDE_VE_DEFAULTS, scoreSdeVeAddNoise, scoreSdeVeStepCorrect, scoreSdeVeStepPred, scoreSdeVeTables,
} from '../../../src/engine/schedulers/score-sde-ve.ts';
import { createScheduler } from '../../../src/engine/schedulers/registry.ts';
import { img2imgStart } from '../../../src/engine/schedulers/img2img.ts';
import { idealGaussianDenoiser, meanStd } from './ideal-denoiser.ts';

const fx = loadFixture('schedulers/trajectories');
const SD15 = fx.meta.sd15_config;

test('ScoreSdeVe primitives equal diffusers: tables, step_correct, step_pred, add_noise', () => {
  const d = SCORE_SDE_VE_DEFAULTS;
  const { timesteps, discrete, sigmas } = scoreSdeVeTables(10, d.sigma_min, d.sigma_max, d.sampling_eps);
  assert.ok(maxRelDiff(timesteps, fx.f32('sde_ve.timesteps'), 1e-6) <= 1e-6);
  assert.ok(maxRelDiff(discrete, fx.f32('sde_ve.discrete_sigmas'), 1e-6) <= 1e-5);
  assert.ok(maxRelDiff(sigmas, fx.f32('sde_ve.sigmas'), 1e-6) <= 1e-5);
  const xa = fx.f32('fake.xa');
  const xb = fx.f32('fake.xb');
  const g = new TorchGenerator(13);
  const corrected = scoreSdeVeStepCorrect(xb, xa, d.snr, g.randn([xa.length]));
  assert.ok(maxRelDiff(corrected, fx.f32('sde_ve.corrected'), 1) <= 1e-5);
  const { prev, mean } = scoreSdeVeStepPred(xb, timesteps[3]!, fx.f32('sde_ve.corrected'), discrete, 10, g.randn([xa.length]));
  // The pred step's diffusion is ~1e2: compare relative to that scale.
  assert.ok(maxRelDiff(mean, fx.f32('sde_ve.pred_mean'), 1) <= 1e-5);
  assert.ok(maxRelDiff(prev, fx.f32('sde_ve.pred'), 1) <= 1e-5);
  const noisy = scoreSdeVeAddNoise(xa, xb, discrete[4]!);
  assert.ok(maxRelDiff(noisy, fx.f32('sde_ve.add_noise'), 1) <= 1e-5);
});

test('ScoreSdeVe predictor-corrector sampler turns noise into the data distribution (exact Gaussian denoiser)', () => {
  const s = createScheduler('ScoreSdeVeScheduler', SD15);
  s.setTimesteps(50);
  assert.equal(s.order, 2);
  assert.equal(s.timesteps.length, 100, 'one corrector + one predictor evaluation per step');
  const model = idealGaussianDenoiser(SD15, 0.3, 0.5);
  const g = new TorchGenerator(1);
  let x: Float32Array = g.randn([8192]).map((v) => v * s.initNoiseSigma);
  for (const t of s.timesteps) x = s.step(model(s.scaleModelInput(x, t), t), t, x, { generator: g });
  const { mean, std } = meanStd(x);
  assert.ok(Math.abs(mean - 0.3) < 0.02, `mean ${mean}`);
  assert.ok(Math.abs(std - 0.5) < 0.025, `std ${std}`);
});

test('ScoreSdeVe img2img skips whole predictor-corrector steps', () => {
  const s = createScheduler('ScoreSdeVeScheduler', SD15);
  s.setTimesteps(30);
  const start = img2imgStart(s, 30, 0.55);
  assert.equal(start.timesteps.length, 2 * 16);
  const g = new TorchGenerator(2);
  const x0 = new Float32Array(4096).fill(0.3);
  let x = s.addNoise(x0, g.randn([4096]), start.latentTimestep);
  const model = idealGaussianDenoiser(SD15, 0.3, 0.5);
  for (const t of start.timesteps) x = s.step(model(s.scaleModelInput(x, t), t), t, x, { generator: g });
  assert.ok(Math.abs(meanStd(x).mean - 0.3) < 0.03);
});
