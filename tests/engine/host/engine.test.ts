// The engine behind its worker thread: a real generation on the tiny models, progress, cancellation, and the
// calling thread's event loop staying free while the networks run.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import sharp from 'sharp';
import { createEngine } from '../../../src/engine/host/index.ts';
import { EngineError } from '../../../src/engine/errors.ts';
import type { GenerateOptions } from '../../../src/engine/pipeline/types.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';

const dataDir = tinyDataDir();
const engine = await createEngine({ dataDir, threads: 1 });
after(async () => {
  await engine.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const W = 32, H = 32;
const hint = { width: W, height: H, data: new Uint8Array(W * H * 3).map((_, i) => (i * 37) % 256) };
const opts: GenerateOptions = {
  modelId: 'tiny', prompt: 'a cat', negativePrompt: '', width: W, height: H,
  controls: [{ type: 'canny', image: hint, scale: 1 }], autoHint: false, guessMode: false, samples: 2,
  scheduler: 'EulerAncestralDiscreteScheduler', steps: 6, guidanceScale: 7.5, strength: 1, seed: 1234, tomesd: true,
  useKarrasSigmas: false, algorithmType: 'none', vae: null, loras: [], clipSkip: 1, safetyChecker: true,
  enhancePrompt: true, multiLingual: true, upscale: 1,
};

test('generates PNGs of the requested size, reports each step, and is reproducible by seed', async () => {
  const steps: number[] = [];
  const r = await engine.generate(opts, { onProgress: (p) => steps.push(p.step) });
  assert.equal(r.images.length, 2);
  for (const png of r.images) {
    const meta = await sharp(png).metadata();
    assert.equal(meta.format, 'png');
    assert.deepEqual([meta.width, meta.height], [W, H]);
  }
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6]);
  // the embedded nsfwjs checker ran on both images; the text extras have no model installed and say so
  assert.equal(r.applied.safetyChecker.status, 'ran');
  assert.deepEqual(r.nsfw, [false, false]);
  assert.deepEqual(r.applied.translation, { status: 'ran', model: 'franc-min@6.2.0', note: 'language undetermined (too short): passed unchanged' });
  assert.equal(r.applied.promptEnhancement.status, 'unavailable');
  assert.equal(r.applied.upscale.status, 'off');
  const again = await engine.generate(opts);
  assert.ok(again.images[0]!.equals(r.images[0]!), 'same seed, same image');
  const other = await engine.generate({ ...opts, seed: 4321 });
  assert.ok(!other.images[0]!.equals(r.images[0]!), 'another seed, another image');
});

test('upscale 2 and 3 return exactly 2× and 3× the size with the embedded upscaler; safety_checker no skips the check', async () => {
  for (const factor of [2, 3] as const) {
    const r = await engine.generate({ ...opts, samples: 1, steps: 2, upscale: factor, safetyChecker: false });
    const meta = await sharp(r.images[0]!).metadata();
    assert.deepEqual([meta.width, meta.height], [factor * W, factor * H]);
    assert.ok(r.applied.upscale.status === 'ran' && r.applied.upscale.factor === factor && /esrgan-slim-x/.test(r.applied.upscale.model));
    assert.equal(r.applied.safetyChecker.status, 'off');
  }
});

test('the event loop keeps running while the worker generates', async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const t0 = performance.now();
  await engine.generate({ ...opts, steps: 20 });
  clearInterval(timer);
  const expected = (performance.now() - t0) / 5;
  assert.ok(ticks > expected * 0.3, `only ${ticks} of ~${Math.round(expected)} timer ticks ran during generation`);
});

test('a cancelled request stops between steps with a cancelled error', async () => {
  const ac = new AbortController();
  const seen: number[] = [];
  const p = engine.generate({ ...opts, steps: 40 }, { signal: ac.signal, onProgress: (e) => { seen.push(e.step); if (e.step === 2) ac.abort(); } });
  await assert.rejects(p, (e: unknown) => e instanceof EngineError && e.code === 'cancelled');
  assert.ok(seen.length < 40, `ran ${seen.length} of 40 steps after the cancel`);
});

test('a request whose signal is already aborted is dropped before it starts', async () => {
  const ac = new AbortController();
  ac.abort();
  const steps: number[] = [];
  await assert.rejects(engine.generate(opts, { signal: ac.signal, onProgress: (e) => steps.push(e.step) }),
    (e: unknown) => e instanceof EngineError && e.code === 'cancelled');
  assert.deepEqual(steps, []);
});

test('a missing model is a model_missing error naming it', async () => {
  await assert.rejects(engine.generate({ ...opts, modelId: 'nope' }), (e: unknown) => e instanceof EngineError && e.code === 'model_missing' && /nope/.test(e.message));
});
