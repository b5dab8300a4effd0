// API overhead per request beyond engine time (target < 20 ms at p50/p99), and fetch requests per second.
// Runs a real server on loopback with the real engine on the tiny demo models (64x64, 2 steps, strength 0.55: 1 denoising step) so engine time is
// small and measured exactly by the engine itself (generationTime).
//   node --import tsx bench/api-overhead.ts [requests=40] [fetchSeconds=3]
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import pino from 'pino';
import { loadConfig } from '../src/config.ts';
import { createApp } from '../src/api/app.ts';
import { createDemoModels } from '../src/engine/models/demo.ts';
import { engineFactory } from '../src/worker/engine-factory.ts';

const N = Number(process.argv[2] ?? 40);
const FETCH_SECONDS = Number(process.argv[3] ?? 3);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

const dataDir = mkdtempSync(join(tmpdir(), 'cn-bench-'));
try {
  await createDemoModels(join(dataDir, 'models'), { baseId: 'tiny-demo', types: ['canny'] });
  // ORT's intra-op threads spin between runs: with one per core they starve the HTTP thread (measured: 12-30 ms
  // before the engine starts instead of ~3.5 ms), so the engine gets one core fewer than the machine has.
  const threads = Number(process.env.ENGINE_THREADS ?? Math.max(1, availableParallelism() - 1));
  const cfg = loadConfig({ LOG_LEVEL: 'silent' }, { dataDir, port: 0, waitWindowMs: 60_000, rateLimitPerMinute: 0, maxQueuedPerKey: 10_000, engineThreads: threads });
  const app = await createApp(cfg, { engine: engineFactory(cfg), logger: pino({ level: 'silent' }) });
  const key = app.ctx.keys.create().key;
  const url = await app.listen();
  const img = (await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 90, g: 20, b: 200 } } }).png().toBuffer()).toString('base64');
  const body = JSON.stringify({ key, controlnet_model: 'canny', init_image: img, width: 64, height: 64, num_inference_steps: 2, seed: 1 });
  const post = async (path: string, b: string) => (await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b })).json() as Promise<any>;
  await post('/api/v6/images/controlnet', body); // warm-up: compiles and loads the networks
  const overheads: number[] = [];
  const engineMs: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const r = await post('/api/v6/images/controlnet', body);
    const wall = performance.now() - t0;
    if (r.status !== 'success') throw new Error(JSON.stringify(r));
    engineMs.push(r.generationTime * 1000);
    overheads.push(wall - r.generationTime * 1000);
  }
  const last = (await post('/api/v6/images/controlnet', body)).id as number;
  let done = 0;
  const until = performance.now() + FETCH_SECONDS * 1000;
  const fetchBody = JSON.stringify({ key });
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (performance.now() < until) {
      const r = await post(`/api/v6/images/fetch/${last}`, fetchBody);
      if (r.status !== 'success') throw new Error('fetch failed');
      done++;
    }
  }));
  const f = (x: number) => x.toFixed(1);
  console.log(`engine threads: ${threads}; requests: ${N} sequential, 64x64, 2 steps (1 run at strength 0.55), tiny demo model`);
  console.log(`engine time ms: p50 ${f(pct(engineMs, 0.5))} p99 ${f(pct(engineMs, 0.99))}`);
  console.log(`overhead beyond engine time ms: p50 ${f(pct(overheads, 0.5))} p99 ${f(pct(overheads, 0.99))} (target < 20)`);
  console.log(`fetch: ${(done / FETCH_SECONDS).toFixed(0)} requests/s (16 concurrent clients, ${FETCH_SECONDS} s)`);
  await app.close();
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
