// Every scheduler of the spec runs through the pipeline on the tiny model (each one's math is checked against
// diffusers in tests/engine/schedulers; this checks the wiring: order-2 samplers, stochastic draws, inversion).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { EngineError } from '../../../src/engine/errors.ts';
import { Pipeline } from '../../../src/engine/pipeline/pipeline.ts';
import { SCHEDULER_NAMES, type GenerateOptions } from '../../../src/engine/pipeline/types.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';

const dataDir = tinyDataDir();
const pipeline = await Pipeline.create({ dataDir, threads: 1 });
after(() => rmSync(dataDir, { recursive: true, force: true }));
const W = 32, H = 32;
const image = (k: number) => ({ width: W, height: H, data: new Uint8Array(W * H * 3).map((_, i) => (i * k) % 251) });
const opts: GenerateOptions = {
  modelId: 'tiny', prompt: 'a lighthouse', negativePrompt: 'fog', width: W, height: H, controls: [{ type: 'canny', image: image(7), scale: 1 }],
  autoHint: false, guessMode: false, samples: 1, scheduler: 'DDIMScheduler', steps: 4, guidanceScale: 7.5, strength: 1, seed: 3,
  tomesd: false, useKarrasSigmas: true, algorithmType: 'none', vae: null, loras: [], clipSkip: 1, safetyChecker: false,
  enhancePrompt: false, multiLingual: false, upscale: 1,
};

for (const scheduler of SCHEDULER_NAMES) {
  test(`${scheduler} generates a finite image, reproducibly`, async () => {
    const o = { ...opts, scheduler, ...(scheduler === 'DDIMInverseScheduler' ? { initImage: image(13), strength: 0.8 } : {}) };
    const steps: number[] = [];
    const a = await pipeline.generateRaw(o, { onProgress: (p) => steps.push(p.step) });
    assert.ok(a.pixels.every(Number.isFinite), 'finite pixels');
    assert.ok(steps.length >= 1, 'progress reported');
    const b = await pipeline.generateRaw(o);
    assert.deepEqual(b.pixels, a.pixels, 'same seed, same image');
  });
}

test('DDIMInverseScheduler without init_image is a bad_input error naming the scheduler', async () => {
  await assert.rejects(pipeline.generateRaw({ ...opts, scheduler: 'DDIMInverseScheduler' }),
    (e: unknown) => e instanceof EngineError && e.code === 'bad_input' && e.field === 'scheduler');
});

test('DPMSolverMultistepScheduler honours each algorithm_type; Karras sigmas are reported ignored where unsupported', async () => {
  const outs: Float32Array[] = [];
  for (const algorithmType of ['dpmsolver++', 'sde-dpmsolver++', 'dpmsolver'] as const) {
    outs.push((await pipeline.generateRaw({ ...opts, scheduler: 'DPMSolverMultistepScheduler', algorithmType })).pixels);
  }
  assert.ok(outs[0]!.some((v, i) => v !== outs[1]![i]) && outs[0]!.some((v, i) => v !== outs[2]![i]), 'algorithms differ');
  assert.equal((await pipeline.generateRaw({ ...opts, scheduler: 'DDIMScheduler' })).applied.karrasSigmas, 'ignored');
  assert.equal((await pipeline.generateRaw({ ...opts, scheduler: 'EulerDiscreteScheduler' })).applied.karrasSigmas, 'applied');
});
