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
import { EtaModel } from '../../src/worker/eta.ts';
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
  // megapixel-pass (stepUnits: output pixels × (UNet rows + ControlNet rows)), decode per megapixel
  const testDelays = { build: 300, load: 200, encode: 300, vae_encode: 75_000, step: 200_000, decode: 150_000 };
  const p = await Pipeline.create({ dataDir, threads: 1, testDelays });
  const eta = new EtaModel();
  // img2img: builds and loads the text encoder, canny ControlNet, UNet, VAE encoder and VAE decoder
  await run(p, eta, { ...base(64), initImage: image(64), strength: 0.75 }, 'first');
  const second: GenerateOptions = {
    ...base(96), steps: 8, strength: 0.6, initImage: image(96), vae: 'vae-alt', scheduler: 'EulerDiscreteScheduler',
    controls: [{ type: 'depth', image: image(96), scale: 1 }],
  };
  let plan: WorkPlan | undefined;
  const samples = await run(p, eta, second, 'second', (pl) => { plan = pl; });
  assert.ok(samples.length >= 10, `${samples.length} eta answers`);
  const first = samples[0]!;
  assert.ok(first.at > 3, `the job took ${first.at} s from its first eta: long enough to judge`);
  // the plan has the new networks' builds and loads, the init image's encoding and the steps the scheduler runs
  const kinds = plan!.work.filter((w) => w.phase === 'build').map((w) => w.network);
  assert.deepEqual(kinds, ['controlnet:depth', 'vae-encoder:vae:vae-alt', 'vae-decoder:vae:vae-alt']);
  assert.equal(plan!.work.filter((w) => w.phase === 'step').length, 4, 'Euler, 8 steps at strength 0.6: 4 steps');
  assert.equal(plan!.work.filter((w) => w.phase === 'vae_encode').length, 1);
  const judged = samples.filter((s) => s.at >= 1);
  const worst = judged.reduce((w, s) => Math.max(w, Math.abs(s.eta - s.at) / s.at), 0);
  const table = judged.map((s) => `${s.at.toFixed(2)}:${s.eta.toFixed(2)}`).join(' ');
  t.diagnostic(`worst relative error ${worst.toFixed(3)}; first answer ${first.eta.toFixed(2)} s for ${first.at.toFixed(2)} s`);
  assert.ok(worst <= 0.25, `worst relative error ${worst.toFixed(3)} (real:eta ${table})`);
});
