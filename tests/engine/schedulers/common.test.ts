import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture } from '../../support/fixtures.ts';
import {
  alphasCumprod, interpIndex, npArange, npLinspace, resolveConfig, roundHalfEven, sigmaToT, trainBetas,
} from '../../../src/engine/schedulers/common.ts';
import { DDPM_DEFAULTS } from '../../../src/engine/schedulers/ddpm.ts';

const fx = loadFixture('schedulers/trajectories');

function bitsEqual(a: Float32Array, b: Float32Array): number {
  let bad = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) bad++;
  return bad;
}

test('training betas and alphas_cumprod equal torch bit for bit (SD 1.5, linear, cosine)', () => {
  const configs: Record<string, Record<string, unknown>> = {
    sd15: fx.meta.sd15_config,
    linear: {},
    cosine: { beta_schedule: 'squaredcos_cap_v2' },
  };
  for (const [label, given] of Object.entries(configs)) {
    const cfg = resolveConfig(DDPM_DEFAULTS, given);
    const betas = trainBetas(cfg);
    assert.equal(bitsEqual(betas, fx.f32(`schedule.${label}.betas`)), 0, `${label} betas`);
    assert.equal(bitsEqual(alphasCumprod(betas), fx.f32(`schedule.${label}.alphas_cumprod`)), 0, `${label} alphas_cumprod`);
  }
});

test('numpy helpers: round half to even, linspace end point, arange length, interp', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, -0, 2, 3]);
  const ls = npLinspace(0, 999, 7);
  assert.equal(ls[6], 999);
  assert.equal(npLinspace(0, 999, 1)[0], 0);
  assert.equal(npArange(1000, 0, -1000 / 30).length, 30);
  assert.equal(interpIndex(2.25, [0, 10, 20, 40]), 25);
  assert.equal(interpIndex(-1, [5, 6]), 5);
});

test('from_config keeps matching keys, class defaults for the rest, and overrides win', () => {
  const cfg = resolveConfig(DDPM_DEFAULTS, { beta_schedule: 'scaled_linear', skip_prk_steps: true }, { clip_sample: false });
  assert.equal(cfg.beta_schedule, 'scaled_linear');
  assert.equal(cfg.clip_sample, false);
  assert.equal(cfg.timestep_spacing, 'leading');
  assert.equal('skip_prk_steps' in cfg, false);
});

test('sigmaToT inverts the log-sigma table', () => {
  const logs = Float32Array.from([0, 1, 2, 3].map((v) => Math.log(v + 1)));
  assert.ok(Math.abs(sigmaToT(2, logs) - 1) < 1e-6);
  assert.ok(Math.abs(sigmaToT(Math.sqrt(6), logs) - 1.5) < 1e-6);
  assert.equal(sigmaToT(0.5, logs), 0);
  assert.equal(sigmaToT(10, logs), 3);
});
