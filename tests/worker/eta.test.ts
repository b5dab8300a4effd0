// The eta of a running job from the seconds per unit of each phase measured on this server, on the tiny models
// with a slowed engine (the engine's test-only delays give them the time structure of a large model: builds and
// loads that scale with weights, steps and decodes that scale with pixels). A first request teaches the model;
// the second runs at another size, with other step counts and scheduler, and a ControlNet and a VAE that must be
// built and loaded, and every eta it answers, from the first on, is within ±25% of the real remaining time.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Pipeline } from '../../src/engine/pipeline/pipeline.ts';
import type { GenerateOptions, PhaseEvent, WorkPlan } from '../../src/engine/pipeline/types.ts';
import { DECAY, EtaModel, PRIOR_SECONDS_PER_UNIT } from '../../src/worker/eta.ts';
import { tinyDataDir } from '../support/tiny-models.ts';

const dataDir = tinyDataDir();
after(() => rmSync(dataDir, { recursive: true, force: true }));

const image = (s: number) => ({ width: s, height: s, data: new Uint8Array(s * s * 3).map((_, i) => (i * 13) % 256) });
const base = (s: number): GenerateOptions => ({
  modelId: 'tiny', prompt: 'a boat', negativePrompt: '', width: s, height: s, controls: [{ type: 'canny', image: image(s), scale: 1 }],
  autoHint: false, guessMode: false, samples: 1, scheduler: 'DDIMScheduler', steps: 4, guidanceScale: 7.5, strength: 1, seed: 5,
  tomesd: false, useKarrasSigmas: false, algorithmType: 'none', vae: null, loras: [], clipSkip: 1, safetyChecker: false,
  enhancePrompt: false, multiLingual: false, upscale: 1,
});

/** Runs o, feeding the eta model, and samples the eta at the plan, after each phase and every 150 ms. */
async function run(p: Pipeline, eta: EtaModel, o: GenerateOptions, id: string, onPlan?: (p: WorkPlan) => void): Promise<{ at: number; eta: number }[]> {
  const samples: { at: number; eta: number }[] = [];
  const sample = () => { const e = eta.remaining(id); if (e !== undefined) samples.push({ at: performance.now(), eta: e }); };
  const timer = setInterval(sample, 150);
  try {
    await p.generateRaw(o, {
      onPlan: (plan: WorkPlan) => { onPlan?.(plan); eta.start(id, plan); sample(); },
      onPhase: (e: PhaseEvent) => { eta.phase(id, e); sample(); },
    });
  } finally {
    clearInterval(timer);
    eta.finish(id);
  }
  const end = performance.now();
  return samples.map((s) => ({ at: (end - s.at) / 1000, eta: s.eta }));
}

test('eta from measured seconds per unit of each phase: within ±25% from the first answer on, for a job with new networks at a new size', async (t) => {
  // ms per unit: build/load per MB of weights, encode per prompt encoding, vae_encode per megapixel, step per
  // megapixel-pass (stepUnits: output pixels × (UNet rows + ControlNet rows)), decode per megapixel: a 48² CFG
  // step with one ControlNet (0.0092 megapixel-passes) sleeps 4 s and its decode 3.5 s (as at SD 1.5 size, where
  // a 512² decode takes about one step's time; a short tail would judge the last step's noise against the last
  // second), the 2 MB depth ControlNet's build 6 s. The tiny models' own compute must stay a small part of each
  // phase, since a nice-19 process on a loaded machine may get a small share of a core for it: so the sizes are
  // small (at 96² a step computes ~1 s, and its attention grows with the square of the pixels, which no per-unit
  // rate can follow), and a build or load (~0.1-1 s of compute each) sleeps several times its compute.
  const testDelays = { build: 3000, load: 2000, encode: 300, vae_encode: 300_000, step: 440_000, decode: 1_500_000 };
  const p = await Pipeline.create({ dataDir, threads: 1, testDelays });
  const eta = new EtaModel();
  // img2img: builds and loads the text encoder, canny ControlNet, UNet, VAE encoder and VAE decoder
  await run(p, eta, { ...base(32), initImage: image(32), strength: 0.75 }, 'first');
  const second: GenerateOptions = {
    ...base(48), steps: 8, strength: 0.6, initImage: image(48), vae: 'vae-alt', scheduler: 'EulerDiscreteScheduler',
    controls: [{ type: 'depth', image: image(48), scale: 1 }],
  };
  let plan: WorkPlan | undefined;
  const samples = await run(p, eta, second, 'second', (pl) => { plan = pl; });
  assert.ok(samples.length >= 10, `${samples.length} eta answers`);
  const first = samples[0]!;
  assert.ok(first.at > 3, `the job took ${first.at} s from its first eta: long enough to judge`);
  // the plan has the new networks' builds and loads, the init image's encoding and the steps the scheduler runs
  const kinds = plan!.work.filter((w) => w.phase === 'build').map((w) => w.network);
  assert.deepEqual(kinds, ['controlnet:depth', 'vae-decoder:vae:vae-alt', 'vae-encoder:vae:vae-alt']);
  assert.equal(plan!.work.filter((w) => w.phase === 'step').length, 4, 'Euler, 8 steps at strength 0.6: 4 steps');
  assert.equal(plan!.work.filter((w) => w.phase === 'vae_encode').length, 1);
  const judged = samples.filter((s) => s.at >= 1);
  const err = (s: { at: number; eta: number }) => Math.abs(s.eta - s.at) / s.at;
  const worstAt = judged.reduce((w, s) => (err(s) > err(w) ? s : w), judged[0]!);
  const worst = err(worstAt);
  const table = judged.map((s) => `${s.at.toFixed(2)}:${s.eta.toFixed(2)}`).join(' ');
  t.diagnostic(`worst relative error ${worst.toFixed(3)} (eta ${worstAt.eta.toFixed(2)} s for ${worstAt.at.toFixed(2)} s); first answer ${first.eta.toFixed(2)} s for ${first.at.toFixed(2)} s`);
  assert.ok(worst <= 0.25, `worst relative error ${worst.toFixed(3)} (real:eta ${table})`);
});

const event = (phase: PhaseEvent['phase'], units: number, seconds: number, key?: string): PhaseEvent =>
  ({ phase, units, seconds, key, model: 'm', width: 64, height: 64 });

test('rates: seconds per unit from decayed sums, by key, else the phase, else the prior', () => {
  const eta = new EtaModel();
  assert.equal(eta.rate('load', 'unet'), PRIOR_SECONDS_PER_UNIT.load);
  assert.ok(!eta.measured('load'));
  eta.observe(event('load', 100, 2, 'unet'));
  assert.equal(eta.rate('load', 'unet'), 0.02);
  assert.equal(eta.rate('load', 'vae-decoder'), 0.02, 'a kind not measured yet takes the phase\'s rate');
  eta.observe(event('load', 10, 1, 'vae-decoder'));
  assert.equal(eta.rate('load', 'vae-decoder'), 0.1);
  assert.equal(eta.rate('load', 'unet'), 0.02, 'each kind keeps its own');
  // the phase's rate: (1 + 0.7·2) / (10 + 0.7·100)
  assert.ok(Math.abs(eta.rate('load') - (1 + DECAY * 2) / (10 + DECAY * 100)) < 1e-12);
  // a slower machine shows within a few measurements
  const steps = new EtaModel();
  steps.observe(event('step', 1, 10));
  for (let i = 0; i < 4; i++) steps.observe(event('step', 1, 20));
  assert.ok(steps.rate('step') > 19 && steps.rate('step') < 20, `${steps.rate('step')}`);
  assert.deepEqual(steps.predict([{ phase: 'step', units: 2 }, { phase: 'decode', units: 1 }]), 2 * steps.rate('step') + PRIOR_SECONDS_PER_UNIT.decode);
});

test('a running job: its current piece of work less the time spent in it, plus the later ones', () => {
  let now = 0;
  const eta = new EtaModel({ now: () => now });
  eta.observe(event('step', 1, 2));
  eta.observe(event('decode', 1, 3));
  eta.start('j', { model: 'm', width: 64, height: 64, work: [{ phase: 'step', units: 1 }, { phase: 'step', units: 1 }, { phase: 'decode', units: 1 }] });
  assert.equal(eta.remaining('j'), 7);
  now = 1500;
  assert.equal(eta.remaining('j'), 5.5);
  now = 2500;
  assert.equal(eta.remaining('j'), 5, 'a piece running late counts as about to end');
  eta.phase('j', event('step', 1, 2.5));
  assert.ok(Math.abs(eta.remaining('j')! - (eta.rate('step') + 3)) < 1e-12, 'the rest at the rate just updated');
  assert.equal(eta.remaining('other'), undefined);
});

test('a queued job: the jobs ahead dealt to the workers as they free up, then its own work', () => {
  assert.equal(EtaModel.queued([4], [10, 6], 5), 25, 'one worker: the sum');
  // two workers: 4 → w1, 10 → w2, 6 → w1 (free at 4, ends at 10); the job starts when the first is free (10)
  assert.equal(EtaModel.queued([4], [10, 6], 5, 2), 15);
  assert.equal(EtaModel.queued([], [], 5, 2), 5);
  // a job's work by its request is worked out once (every fetch of every job behind it reads it)
  const eta = new EtaModel();
  let made = 0;
  const work = () => { made++; return [{ phase: 'step' as const, units: 1 }]; };
  assert.equal(eta.workOf(7, work), eta.workOf(7, work));
  assert.equal(made, 1);
});
