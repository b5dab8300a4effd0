// Loaded networks: switching LoRAs reuses the same compiled graphs and sessions; the memory budget evicts
// least recently used sessions that no request holds.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Pipeline } from '../../../src/engine/pipeline/pipeline.ts';
import { SessionCache } from '../../../src/engine/pipeline/sessions.ts';
import type { GenerateOptions } from '../../../src/engine/pipeline/types.ts';
import { ort } from '../../../src/engine/onnx/session.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';

const dataDir = tinyDataDir();
after(() => rmSync(dataDir, { recursive: true, force: true }));
const W = 32, H = 32;
const hint = { width: W, height: H, data: new Uint8Array(W * H * 3).map((_, i) => (i * 11) % 256) };
const opts: GenerateOptions = {
  modelId: 'tiny', prompt: 'a boat', negativePrompt: '', width: W, height: H, controls: [{ type: 'canny', image: hint, scale: 1 }],
  autoHint: false, guessMode: false, samples: 1, scheduler: 'DDIMScheduler', steps: 2, guidanceScale: 7.5, strength: 1, seed: 5,
  tomesd: false, useKarrasSigmas: false, algorithmType: 'none', vae: null, loras: [], clipSkip: 1, safetyChecker: false,
  enhancePrompt: false, multiLingual: false, upscale: 1,
};

test('switching the LoRA set rebuilds and reloads nothing, and changes the image', async () => {
  const p = await Pipeline.create({ dataDir, threads: 1 });
  const none = await p.generateRaw(opts);
  const compiled = readdirSync(join(dataDir, 'cache', 'onnx')).sort();
  const loaded = p.stats().loaded.map((l) => l.key).sort();
  const withA = await p.generateRaw({ ...opts, loras: [{ id: 'lora-a', strength: 1 }] });
  const withAB = await p.generateRaw({ ...opts, loras: [{ id: 'lora-a', strength: 0.5 }, { id: 'lora-b', strength: 0.8 }] });
  const back = await p.generateRaw(opts);
  assert.deepEqual(readdirSync(join(dataDir, 'cache', 'onnx')).sort(), compiled, 'no graph was compiled for a LoRA set');
  assert.deepEqual(p.stats().loaded.map((l) => l.key).sort(), loaded, 'no session was loaded for a LoRA set');
  const diff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
  assert.ok(diff(none.pixels, withA.pixels) > 1e-3, 'the LoRA changed the output');
  assert.ok(diff(withA.pixels, withAB.pixels) > 1e-3, 'another LoRA set, another output');
  assert.equal(diff(none.pixels, back.pixels), 0, 'back to no LoRA gives the first image exactly');
});

test('ToMe with random destinations: another seed reuses the same graph and changes the image', async () => {
  const p = await Pipeline.create({ dataDir, threads: 1 });
  const a = await p.generateRaw({ ...opts, tomesd: true, seed: 1 });
  const compiled = readdirSync(join(dataDir, 'cache', 'onnx')).sort();
  const b = await p.generateRaw({ ...opts, tomesd: true, seed: 2 });
  const a2 = await p.generateRaw({ ...opts, tomesd: true, seed: 1 });
  assert.deepEqual(readdirSync(join(dataDir, 'cache', 'onnx')).sort(), compiled, 'a new seed compiled no graph');
  assert.ok(a.pixels.some((v, i) => v !== b.pixels[i]), 'another seed, another image');
  assert.deepEqual(a2.pixels, a.pixels, 'the same seed, the same image');
});

test('switching ToMe on and off compiles and loads no new graph, and changes the image', async () => {
  const p = await Pipeline.create({ dataDir, threads: 1 });
  const off = await p.generateRaw({ ...opts, tomesd: false, seed: 3 });
  const compiled = readdirSync(join(dataDir, 'cache', 'onnx')).sort();
  const loaded = p.stats().loaded.map((l) => l.key).sort();
  const on = await p.generateRaw({ ...opts, tomesd: true, seed: 3 });
  const offAgain = await p.generateRaw({ ...opts, tomesd: false, seed: 3 });
  assert.deepEqual(readdirSync(join(dataDir, 'cache', 'onnx')).sort(), compiled, 'ToMe on compiled no graph');
  assert.deepEqual(p.stats().loaded.map((l) => l.key).sort(), loaded, 'ToMe on loaded no session');
  assert.equal(loaded.filter((k) => k.startsWith('unet:')).length, 1, 'one UNet session');
  assert.ok(on.pixels.some((v, i) => v !== off.pixels[i]), 'ToMe changes the image');
  assert.deepEqual(offAgain.pixels, off.pixels, 'off again gives the first image exactly');
});

test('SessionCache charges each session its measured RSS growth (load and first run) and evicts the least recently used idle one to keep RSS under the budget', async () => {
  // A model of the process: 50 MB base plus what live sessions hold (40 MB loaded, +20 MB after their first run).
  let rss = 50;
  const released: string[] = [];
  const evicted: string[] = [];
  const plan = (name: string) => async () => ({
    estimateMB: 10, // deliberately wrong: the measurement must win
    create: async () => {
      rss += 40;
      let ran = false;
      return {
        run: async () => { if (!ran) { ran = true; rss += 20; } return {}; },
        release: async () => { released.push(name); rss -= ran ? 60 : 40; },
      } as unknown as ort.InferenceSession;
    },
  });
  const cache = new SessionCache({ budgetMB: 200, rssMB: () => rss, onEvict: (k) => evicted.push(k) });
  const use = (k: string) => cache.use(k, plan(k), (s) => s.run({}));
  await use('a');
  await use('b'); // 50 + 60 + 60 = 170
  assert.deepEqual(cache.loaded().map((l) => [l.key, l.loadMB, l.runMB]), [['a', 40, 20], ['b', 40, 20]]);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(released, []);
  await use('c'); // would be 230: 'a' (idle, oldest) goes before c's first run fits
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(evicted, ['a']);
  assert.ok(rss <= 200, `rss ${rss}`);
  // held sessions are never released, even over the budget
  const held = await Promise.all(['d', 'e'].map((k) => cache.acquire(k, plan(k))));
  await Promise.all(held.map((s) => s.run({})));
  await new Promise((r) => setImmediate(r));
  assert.ok(!evicted.includes('d') && !evicted.includes('e'));
  assert.deepEqual(evicted, ['a', 'b', 'c']);
  cache.release('d');
  cache.release('e');
  assert.equal(cache.evictionCount(), 3);
});

test('useResource: an extra\'s model is charged its load and first use, shares the budget with sessions and is evicted like them, never while in use', async () => {
  let rss = 50;
  const evicted: string[] = [];
  const cache = new SessionCache({ budgetMB: 200, rssMB: () => rss, onEvict: (k) => evicted.push(k) });
  const resource = (mb: number, firstUseMB: number) => async () => ({
    estimateMB: 5,
    create: async () => {
      rss += mb;
      let used = false;
      return { use: () => { if (!used) { used = true; rss += firstUseMB; } }, release: async () => { rss -= used ? mb + firstUseMB : mb; } };
    },
  });
  const session = async () => ({ estimateMB: 10, create: async () => { rss += 60; return { run: async () => ({}), release: async () => { rss -= 60; } } as unknown as ort.InferenceSession; } });
  assert.equal(await cache.useResource('extra:checker', resource(30, 10), async (r) => { r.use(); return 'flags'; }), 'flags');
  assert.deepEqual(cache.loaded().map((l) => [l.key, l.loadMB, l.runMB]), [['extra:checker', 30, 10]]);
  await cache.use('unet', session, (s) => s.run({})); // 50 + 40 + 60 = 150
  // a second resource, larger than its estimate: once it is measured over the budget, the checker (idle, least
  // recently used) goes
  await cache.useResource('extra:upscaler', resource(70, 0), async (r) => r.use());
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(evicted, ['extra:checker']);
  assert.ok(rss <= 200, `rss ${rss}`);
  // a resource in use is held: a newcomer evicts the idle UNet instead
  await cache.useResource('extra:translator', resource(20, 0), async (r) => {
    r.use();
    await cache.use('controlnet', session, (s) => s.run({}));
  });
  assert.ok(!evicted.includes('extra:translator'));
  assert.ok(evicted.includes('unet'), `evicted ${evicted.join(', ')}`);
  // a failed creation is forgotten and thrown
  await assert.rejects(cache.useResource('extra:bad', async () => ({ estimateMB: 1, create: async () => { throw new Error('bad file'); } }), async () => 1), /bad file/);
  assert.ok(!cache.has('extra:bad'));
});

test('the safety checker and the upscaler are held in the sessions\' cache, under its budget', async () => {
  const p = await Pipeline.create({ dataDir, threads: 1 });
  await p.generate({ ...opts, safetyChecker: true, upscale: 2 });
  const keys = p.stats().loaded.map((l) => l.key);
  assert.ok(keys.includes('extra:safety_checker:embedded:nsfwjs'), keys.join(', '));
  assert.ok(keys.includes('extra:upscaler:esrgan-slim-x2'), keys.join(', '));
  for (const l of p.stats().loaded.filter((x) => x.key.startsWith('extra:'))) assert.notEqual(l.runMB, null, `${l.key}: its first use was measured`);
  // a budget of 1 MB: every idle session and extra is released after the request
  const tight = await Pipeline.create({ dataDir, threads: 1, memoryBudgetMB: 1 });
  await tight.generate({ ...opts, safetyChecker: true, upscale: 2 });
  assert.deepEqual(tight.stats().loaded.map((l) => l.key), []);
  assert.ok(tight.stats().evictions >= 2);
});
