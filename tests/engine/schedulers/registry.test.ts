// Conformance of all diffusers-equal schedulers against tools/oracle/schedulers.py trajectories.
// Tolerance: |ours - diffusers| <= 1e-5 * max(|diffusers|, FLOOR) elementwise with FLOOR = 1, i.e. relative to
// the unit scale of the latents. Why not a smaller floor: torch's own float32 sqrt/exp/log on CPU (MKL VML)
// are not correctly rounded (measured: torch.sqrt differs from the correctly rounded float32 in ~16% of
// inputs by 1 ulp, exp ~1%, log ~7%), so 1-ulp differences of O(1) intermediates are unavoidable and, after
// cancellation, show up in elements near zero; with FLOOR 0.01, 149 of 378 cases exceed 1e-5, FLOOR 0.1: 37.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture, maxRelDiff } from '../../support/fixtures.ts';
import { TorchGenerator } from '../../../src/engine/random/torch-generator.ts';
import {
  createScheduler, requestOverrides, resolveSchedulerConfig, supportsAlgorithmType, supportsKarrasSigmas,
} from '../../../src/engine/schedulers/registry.ts';
import { img2imgStart } from '../../../src/engine/schedulers/img2img.ts';
import type { Scheduler, SchedulerConfig } from '../../../src/engine/schedulers/types.ts';
import { SCHEDULER_NAMES, type SchedulerName } from '../../../src/engine/pipeline/types.ts';

const fx = loadFixture('schedulers/trajectories');
const SD15 = fx.meta.sd15_config as SchedulerConfig;
const SEED = fx.meta.seed as number;
const TOL = 1e-5;
const FLOOR = 1;

/**
 * Combinations that do not meet 1e-5, with the measured error bound they are held to and why.
 * KDPM2Ancestral with 2 steps: its first sigma_down is sqrt(s1^2 - up^2) with up ~= s1 (catastrophic
 * cancellation), so torch's 1-ulp-off float32 sqrt moves it by ~2% and the interpolated sigma lands on the
 * other side of sigma_min (timestep 0.0096 in diffusers, 0 here). DEIS 50 steps Karras: accumulated rounding
 * (its log-rho coefficients are differences of nearly equal float32 logs), 1.14e-5.
 */
const KNOWN: Record<string, number> = {
  'KDPM2AncestralDiscreteScheduler|2|-|none|epsilon': 1e-3,
  'KDPM2AncestralDiscreteScheduler|2|k|none|epsilon': 1e-3,
  'KDPM2AncestralDiscreteScheduler|2|-|none|v_prediction': 5e-3,
  'KDPM2AncestralDiscreteScheduler|2|k|none|v_prediction': 5e-3,
  'DEISMultistepScheduler|50|k|none|epsilon': 2e-5,
};

function fakeModel(x: Float32Array, t: number): Float32Array {
  return x.map((v) => Math.tanh(v * 0.5 + t / 1000));
}

function run(s: Scheduler, timesteps: number[], latents: Float32Array, g: TorchGenerator, eta?: number) {
  let first: Float32Array | null = null;
  let x = latents;
  timesteps.forEach((t, i) => {
    const eps = fakeModel(s.scaleModelInput(x, t), t);
    x = s.step(eps, t, x, { generator: g, eta });
    if (i === 0) first = x;
  });
  return { final: x, first: first! };
}

function float64Of(key: string): number[] {
  const t = fx.get(key);
  if (t.data instanceof BigInt64Array) return Array.from(new Float64Array(t.data.buffer, t.data.byteOffset, t.data.length));
  return Array.from(t.data as ArrayLike<number>);
}

interface Case {
  key: string; name: SchedulerName; steps: number; karras: boolean; algo: string; prediction_type: string;
  overrides: SchedulerConfig; id?: number; error?: string;
}

/** What our registry gets for the case's request options (the oracle passes the same overrides). */
function build(c: { name: SchedulerName; karras: boolean; algo?: string; prediction_type?: string }): Scheduler {
  return createScheduler(c.name, SD15, {
    useKarrasSigmas: c.karras,
    algorithmType: (c.algo ?? 'none') as never,
    overrides: { prediction_type: c.prediction_type ?? 'epsilon' },
  });
}

test('request overrides equal the from_config kwargs the oracle used', () => {
  for (const c of fx.meta.cases as Case[]) {
    const ours = requestOverrides(c.name, SD15, { useKarrasSigmas: c.karras, algorithmType: c.algo as never, overrides: { prediction_type: c.prediction_type } });
    assert.deepEqual(ours, c.overrides, c.key);
  }
});

test('every diffusers-equal scheduler and option combination matches diffusers (timesteps, sigmas, trajectory)', (t) => {
  const failures: string[] = [];
  let checked = 0;
  for (const c of fx.meta.cases as Case[]) {
    try {
      const s = build(c);
      s.setTimesteps(c.steps);
      if (c.error) {
        failures.push(`${c.key}: diffusers raised (${c.error}) but ours did not`);
        continue;
      }
      const id = c.id!;
      const ts = float64Of(`${id}.timesteps64`);
      assert.equal(s.timesteps.length, ts.length, 'timestep count');
      const tol = KNOWN[c.key] ?? TOL;
      const dt = maxRelDiff(s.timesteps, ts, 1);
      if (dt > Math.max(tol, TOL) && !(c.key in KNOWN)) failures.push(`${c.key}: timesteps off by ${dt} (${s.timesteps.slice(0, 4)} vs ${ts.slice(0, 4)})`);
      if (fx.tensors[`${id}.sigmas`]) {
        const ds = maxRelDiff(s.sigmas!, fx.f32(`${id}.sigmas`), 1e-6);
        if (ds > TOL) failures.push(`${c.key}: sigmas off by ${ds}`);
      }
      const ins = fx.f32(`${id}.init_noise_sigma`)[0]!;
      if (Math.abs(s.initNoiseSigma - ins) > TOL * ins) failures.push(`${c.key}: init_noise_sigma ${s.initNoiseSigma} vs ${ins}`);
      const g = new TorchGenerator(SEED);
      const lat = g.randn([1, 4, 8, 8]).map((v) => Math.fround(v * Math.fround(ins)));
      const { final, first } = run(s, ts, lat, g);
      const d1 = maxRelDiff(first, fx.f32(`${id}.first`), FLOOR);
      const d2 = maxRelDiff(final, fx.f32(`${id}.final`), FLOOR);
      if (c.key in KNOWN) t.diagnostic(`${c.key} (known, see KNOWN): first ${d1.toExponential(2)}, final ${d2.toExponential(2)}`);
      if (d1 > tol || d2 > tol) failures.push(`${c.key}: first step off by ${d1.toExponential(2)}, final by ${d2.toExponential(2)}`);
      checked++;
    } catch (e) {
      if (!c.error) failures.push(`${c.key}: threw ${(e as Error).message}`);
    }
  }
  assert.deepEqual(failures, [], `${failures.length} combinations differ:\n${failures.join('\n')}`);
  assert.ok(checked > 300, `only ${checked} trajectories checked`);
});

/**
 * Variant combinations held to a measured bound instead of 1e-5, and why:
 * - DEIS: its log-rho coefficients are differences of nearly equal float32 logs, and diffusers takes those
 *   logs with numpy's float32 log, which is not correctly rounded (~12% of inputs off by 1 ulp, measured);
 *   the cancellation amplifies that to 1e-5..3e-5 after 21-30 steps.
 * - Euler / Euler ancestral with zero-terminal-SNR betas (sigma_max = 4096) or cosine betas (sigma_0 = 20291):
 *   the first step works on 4096-scale values (one float32 ulp = 4.9e-4), and Euler ancestral's first
 *   sigma_down = sqrt(to^2 - up^2) is the same ill-conditioned difference as KDPM2 ancestral's below (up ~= to
 *   when sigma_from >> sigma_to), so torch's 1-ulp-off sqrt shows in the first step (the final sample
 *   agrees to ~1e-6 for zero-SNR, 1.7e-5 for cosine).
 * - KDPM2 ancestral, cosine betas: sigma_down of the first step is the ill-conditioned difference of two
 *   nearly equal squares when sigma_0 >> sigma_1 (20291 vs 12.8); torch's 1-ulp-off float32 sqrt moves it
 *   from the exact 0.0081 to 0.0068 (ours 0.0087), so one interpolated timestep differs (944.4 vs 950.9).
 */
const KNOWN_VARIANTS: Record<string, number> = {
  'DEISMultistepScheduler|30|{"timestep_spacing":"leading"}': 5e-5,
  'DEISMultistepScheduler|21|{"beta_schedule":"squaredcos_cap_v2"}': 5e-5,
  'DEISMultistepScheduler|21|{"solver_order":3}': 5e-5,
  'DEISMultistepScheduler|30|{"solver_order":3}': 5e-5,
  'EulerDiscreteScheduler|21|{"prediction_type":"v_prediction","rescale_betas_zero_snr":true,"timestep_spacing":"trailing"}': 5e-5,
  'EulerDiscreteScheduler|30|{"prediction_type":"v_prediction","rescale_betas_zero_snr":true,"timestep_spacing":"trailing"}': 5e-5,
  'EulerAncestralDiscreteScheduler|21|{"prediction_type":"v_prediction","rescale_betas_zero_snr":true,"timestep_spacing":"trailing"}': 1e-3,
  'EulerAncestralDiscreteScheduler|30|{"prediction_type":"v_prediction","rescale_betas_zero_snr":true,"timestep_spacing":"trailing"}': 1e-3,
  'EulerAncestralDiscreteScheduler|21|{"beta_schedule":"squaredcos_cap_v2"}': 5e-5,
  'KDPM2AncestralDiscreteScheduler|21|{"beta_schedule":"squaredcos_cap_v2"}': 2e-2,
};
const KNOWN_TIMESTEP_DIFF = new Set(['KDPM2AncestralDiscreteScheduler|21|{"beta_schedule":"squaredcos_cap_v2"}']);

test('config variants (spacing, cosine betas, zero-SNR v-models, thresholding, clipping, order 3, heun) match diffusers', (t) => {
  const failures: string[] = [];
  const variants = fx.meta.variants as { name: SchedulerName; steps: number; overrides: SchedulerConfig; id: number; error?: string }[];
  for (const c of variants) {
    const label = `${c.name}|${c.steps}|${JSON.stringify(c.overrides)}`;
    const tol = KNOWN_VARIANTS[label] ?? TOL;
    try {
      const s = createScheduler(c.name, SD15, { overrides: c.overrides });
      s.setTimesteps(c.steps);
      const ts = float64Of(`${c.id}.timesteps64`);
      if (s.timesteps.length !== ts.length || (maxRelDiff(s.timesteps, ts, 1) > TOL && !KNOWN_TIMESTEP_DIFF.has(label))) { failures.push(`${label}: timesteps ${s.timesteps.slice(0, 3)} vs ${ts.slice(0, 3)}`); continue; }
      if (fx.tensors[`${c.id}.sigmas`] && maxRelDiff(s.sigmas!, fx.f32(`${c.id}.sigmas`), 1e-6) > TOL) failures.push(`${label}: sigmas`);
      const ins = fx.f32(`${c.id}.init_noise_sigma`)[0]!;
      if (Math.abs(s.initNoiseSigma - ins) > TOL * ins) failures.push(`${label}: init_noise_sigma ${s.initNoiseSigma} vs ${ins}`);
      const g = new TorchGenerator(SEED);
      const lat = g.randn([1, 4, 8, 8]).map((v) => Math.fround(v * Math.fround(ins)));
      const { final, first } = run(s, ts, lat, g);
      const d1 = maxRelDiff(first, fx.f32(`${c.id}.first`), FLOOR);
      const d2 = maxRelDiff(final, fx.f32(`${c.id}.final`), FLOOR);
      if (label in KNOWN_VARIANTS) t.diagnostic(`${label} (known, see KNOWN_VARIANTS): first ${d1.toExponential(2)}, final ${d2.toExponential(2)}`);
      if (d1 > tol || d2 > tol) failures.push(`${label}: first step off by ${d1.toExponential(2)}, final by ${d2.toExponential(2)}`);
    } catch (e) {
      failures.push(`${label}: threw ${(e as Error).message}`);
    }
  }
  assert.ok(variants.length > 100);
  assert.deepEqual(failures, [], `${failures.length} variants differ:\n${failures.join('\n')}`);
});

test('img2img (strength 0.55): start timesteps, add_noise and the loop match diffusers', () => {
  const failures: string[] = [];
  const x0 = fx.f32('init_latents');
  for (const c of fx.meta.img2img as { name: SchedulerName; karras: boolean; steps: number; strength: number; id: number; error?: string }[]) {
    const s = build({ name: c.name, karras: c.karras });
    s.setTimesteps(c.steps);
    const start = img2imgStart(s, c.steps, c.strength);
    const g = new TorchGenerator(SEED);
    const noise = g.randn([1, 4, 8, 8]);
    if (c.error) continue; // IPNDM: diffusers has no add_noise; ours extends it (checked in ipndm.test.ts)
    const ts = float64Of(`${c.id}.timesteps`);
    const dt = maxRelDiff(start.timesteps, ts, 1);
    if (start.timesteps.length !== ts.length || dt > TOL) { failures.push(`${c.name} karras=${c.karras}: timesteps differ`); continue; }
    const noisy = s.addNoise(x0, noise, start.latentTimestep);
    const dn = maxRelDiff(noisy, fx.f32(`${c.id}.noisy`), FLOOR);
    const { final } = run(s, start.timesteps, noisy, g);
    const df = maxRelDiff(final, fx.f32(`${c.id}.final`), FLOOR);
    if (dn > TOL || df > TOL) failures.push(`${c.name} karras=${c.karras}: add_noise off by ${dn.toExponential(2)}, final by ${df.toExponential(2)}`);
  }
  assert.deepEqual(failures, [], failures.join('\n'));
});

test('DDIM with eta > 0 draws its noise like diffusers', () => {
  for (const c of fx.meta.ddim_eta as { eta: number; id: number }[]) {
    const s = build({ name: 'DDIMScheduler', karras: false });
    s.setTimesteps(30);
    const g = new TorchGenerator(SEED);
    const lat = g.randn([1, 4, 8, 8]);
    const { final } = run(s, s.timesteps, lat, g, c.eta);
    const d = maxRelDiff(final, fx.f32(`${c.id}.final`), FLOOR);
    assert.ok(d <= TOL, `eta ${c.eta}: off by ${d}`);
  }
});

test('use_karras_sigmas / algorithm_type support matches the diffusers classes', () => {
  const karras = new Set(fx.meta.karras_classes as string[]);
  for (const name of SCHEDULER_NAMES) {
    if (name === 'KarrasVeScheduler' || name === 'ScoreSdeVeScheduler') assert.equal(supportsKarrasSigmas(name), false);
    else assert.equal(supportsKarrasSigmas(name), karras.has(name), name);
    assert.equal(supportsAlgorithmType(name), name === 'DPMSolverMultistepScheduler');
    assert.ok(createScheduler(name, SD15, { useKarrasSigmas: true, algorithmType: 'dpmsolver+++' }), name);
  }
});

test("'dpmsolver+++' means sde-dpmsolver++ and 'none' keeps the class default", () => {
  assert.equal(resolveSchedulerConfig('DPMSolverMultistepScheduler', SD15, { algorithmType: 'dpmsolver+++' }).algorithm_type, 'sde-dpmsolver++');
  assert.equal(resolveSchedulerConfig('DPMSolverMultistepScheduler', SD15, { algorithmType: 'none' }).algorithm_type, 'dpmsolver++');
  // from_config keeps the model's keys and the class defaults for the rest
  const ddim = resolveSchedulerConfig('DDIMScheduler', SD15);
  assert.equal(ddim.beta_schedule, 'scaled_linear');
  assert.equal(ddim.set_alpha_to_one, false);
  assert.equal(ddim.timestep_spacing, 'leading');
  assert.equal(ddim.clip_sample, false);
  assert.equal('skip_prk_steps' in ddim, false);
});

test('diffusers rejects final_sigmas_type zero for dpmsolver/sde-dpmsolver; so do we when the model config asks for it', () => {
  for (const algo of ['dpmsolver', 'sde-dpmsolver'] as const) {
    assert.throws(() => createScheduler('DPMSolverMultistepScheduler', { ...SD15, final_sigmas_type: 'zero' }, { algorithmType: algo }), /final_sigmas_type/);
    assert.equal(resolveSchedulerConfig('DPMSolverMultistepScheduler', SD15, { algorithmType: algo }).final_sigmas_type, 'sigma_min');
  }
});

test('combinations diffusers rejects are rejected here too', () => {
  const rejections = fx.meta.rejections as { name: SchedulerName; overrides: SchedulerConfig; steps: number; error: string }[];
  assert.ok(rejections.length >= 9);
  for (const r of rejections) {
    assert.throws(() => {
      const s = createScheduler(r.name, SD15, { overrides: r.overrides });
      s.setTimesteps(r.steps);
      const g = new TorchGenerator(SEED);
      run(s, s.timesteps, g.randn([1, 4, 8, 8]), g);
    }, Error, `${r.name} ${JSON.stringify(r.overrides)} (diffusers: ${r.error})`);
  }
});
