// The pool on the tiny demo model: throughput with 1, 2 and 3 servers (requests/s and the ratio to one server), the
// pool's added latency per request over one machine (SQLite queue), and failover time from kill -9 of a worker to
// its job running again. Real redis-server and S3 (SeaweedFS, signatures checked), as in tests/e2e/pool.test.ts; the
// servers run in this process (each with its own DATA_DIR and its own engine thread), the killed worker in a child.
// Round trips per request: every write of this process to Redis's socket is one round trip (ioredis writes a
// command, a pipeline or a MULTI block in one write), counted over the latency run and less the background rate
// (heartbeats, stalled-job checks, idle polls) measured while idle.
//   node --import tsx bench/pool.ts [requests=30] [latency]   ("latency": the added latency and round trips only)
import { spawn } from 'node:child_process';
import { Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import pino from 'pino';
import { loadConfig, type Config } from '../src/config.ts';
import { createApp, type App } from '../src/api/app.ts';
import { createDemoModels } from '../src/engine/models/demo.ts';
import { engineFactory } from '../src/worker/engine-factory.ts';
import { startRedis } from '../tests/support/redis.ts';
import { startS3 } from '../tests/support/s3.ts';
import { S3Store } from '../src/storage/s3.ts';

const N = Number(process.argv[2] ?? 30);
const LATENCY_ONLY = process.argv[3] === 'latency';
/** Sequential requests measured for the added latency (p50, p95). */
const LATENCY_REQUESTS = 40;
const LEASE_MS = 3000;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const KEY = 'bench-key-0123456789abcdef0123';
const redis = await startRedis();
const s3 = await startS3('bench');
const dirs: string[] = [];
// Writes to Redis's and to S3's socket by this process.
const writes = { redis: 0, s3: 0 };
const s3Port = Number(new URL(s3.endpoint).port);
const rawWrite = Socket.prototype.write;
Socket.prototype.write = function (this: Socket, ...a: unknown[]) {
  if (this.remotePort === redis.port) writes.redis++;
  else if (this.remotePort === s3Port) writes.s3++;
  return (rawWrite as (...x: unknown[]) => boolean).apply(this, a);
} as typeof Socket.prototype.write;
const img = (await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 90, g: 20, b: 200 } } }).png().toBuffer()).toString('base64');
const body = (seed: number) => JSON.stringify({ key: KEY, controlnet_model: 'canny', init_image: img, width: 64, height: 64, num_inference_steps: 2, seed });

async function server(pool: boolean, prefix: string, extra: Partial<Config> = {}): Promise<{ app: App; url: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cn-bench-pool-'));
  dirs.push(dataDir);
  await createDemoModels(join(dataDir, 'models'), { baseId: 'tiny-demo', types: ['canny'] });
  const env: Record<string, string> = { LOG_LEVEL: 'silent', CONTROLNET_API_KEY: KEY, LEASE_MS: String(LEASE_MS), HEARTBEAT_MS: '1000',
    ...(pool ? { REDIS_URL: `${redis.url}`, SERVER_ID: prefix, ...s3.env } : {}) };
  const cfg = loadConfig(env, { dataDir, port: 0, waitWindowMs: 0, rateLimitPerMinute: 1_000_000, maxQueuedPerKey: 10_000, engineThreads: 1, ...extra });
  const app = await createApp(cfg, { engine: engineFactory(cfg), logger: pino({ level: 'silent' }) });
  return { app, url: await app.listen() };
}

const post = async (url: string, b: string) => (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b })).json() as Promise<any>;

/** Submits N requests to the first server and waits for all: requests per second. */
async function throughput(apps: { app: App; url: string }[]): Promise<number> {
  // Warm-up: every server compiles and loads the networks once.
  await Promise.all(apps.map(async (a, i) => a.app.ctx.queue.waitUntilFinished((await post(`${a.url}/api/v6/images/controlnet`,
    JSON.stringify({ ...JSON.parse(body(i)), loadbalancer: 'no' }))).id, 120_000)));
  const t0 = performance.now();
  const ids: number[] = [];
  for (let i = 0; i < N; i++) ids.push((await post(`${apps[0]!.url}/api/v6/images/controlnet`, body(i))).id);
  for (const id of ids) {
    const j = await apps[0]!.app.ctx.queue.waitUntilFinished(id, 300_000);
    if (j?.status !== 'success') throw new Error(`job ${id}: ${j?.status} ${j?.error}`);
  }
  return N / ((performance.now() - t0) / 1000);
}

/** Sequential requests answered within the wait window: wall time minus engine time (ms). */
async function overhead(url: string, label: string): Promise<number[]> {
  const out: number[] = [];
  const b = (i: number) => JSON.stringify({ ...JSON.parse(body(i)), loadbalancer: 'no' });
  await post(`${url}/api/v6/images/controlnet`, b(0));
  // Background round trips (heartbeats, stalled checks, idle polls) per second, measured idle.
  const idle0 = { ...writes };
  const idleT0 = performance.now();
  await new Promise((r) => setTimeout(r, 3000));
  const idleSec = (performance.now() - idleT0) / 1000;
  const bg = (writes.redis - idle0.redis) / idleSec;
  const w0 = { ...writes };
  const t00 = performance.now();
  for (let i = 0; i < LATENCY_REQUESTS; i++) {
    const t0 = performance.now();
    const r = await post(`${url}/api/v6/images/controlnet`, b(i));
    if (r.status !== 'success') throw new Error(JSON.stringify(r).slice(0, 300));
    out.push(performance.now() - t0 - r.generationTime * 1000);
  }
  const sec = (performance.now() - t00) / 1000;
  const redisPer = (writes.redis - w0.redis - bg * sec) / LATENCY_REQUESTS;
  console.log(`  ${label}: p50 ${pct(out, 0.5).toFixed(1)} ms, p95 ${pct(out, 0.95).toFixed(1)} ms beyond engine time; `
    + `Redis round trips per request ${redisPer.toFixed(1)} (background ${bg.toFixed(1)}/s subtracted), S3 socket writes per request ${((writes.s3 - w0.s3) / LATENCY_REQUESTS).toFixed(1)}`);
  return out;
}

try {
  console.log(`cores: ${availableParallelism()}; engine threads per server: 1; ${N} requests of 64x64, 2 steps (1 run), tiny demo model`);
  // One machine (SQLite), the reference.
  const single = await server(false, 'single', { waitWindowMs: 60_000 });
  const singleOver = await overhead(single.url, 'one machine');
  await single.app.close();
  const rates: number[] = [];
  const servers: { app: App; url: string }[] = [];
  for (let n = 1; n <= 3; n++) {
    servers.push(await server(true, `bench-s${n}`));
    if (n === 1) {
      const cfg = servers[0]!.app.ctx.config;
      (cfg as { waitWindowMs: number }).waitWindowMs = 60_000;
      const poolOver = await overhead(servers[0]!.url, 'pool');
      (cfg as { waitWindowMs: number }).waitWindowMs = 0;
      const d = pct(poolOver, 0.5) - pct(singleOver, 0.5);
      console.log(`added latency of the pool per request: p50 ${d.toFixed(1)} ms (pool ${pct(poolOver, 0.5).toFixed(1)} ms vs one machine ${pct(singleOver, 0.5).toFixed(1)} ms beyond engine time; goal < 20 ms)`);
      // Part of it is the output's PUT to the bucket; measured alone here (the test S3 server on this machine).
      const bucket = new S3Store({ endpoint: s3.endpoint, bucket: s3.bucket, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey });
      const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toBuffer();
      const puts: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        await bucket.put(`bench-put-${i}.png`, png, false);
        puts.push(performance.now() - t0);
      }
      console.log(`  of which one output PUT to the S3 test server: p50 ${pct(puts, 0.5).toFixed(1)} ms`);
      if (LATENCY_ONLY) break;
    }
    const r = await throughput(servers);
    rates.push(r);
    console.log(`${n} server(s): ${r.toFixed(2)} requests/s, ${(r / rates[0]!).toFixed(2)}x one server (goal >= ${(0.9 * n).toFixed(1)}x where cores allow)`);
  }
  if (LATENCY_ONLY) {
    for (const s of servers) await s.app.close();
    process.exitCode = 0;
  } else {
  // Failover: a worker process claims a job and is killed with kill -9; the pool's servers run it again.
  const q = servers[0]!.app.ctx.queue;
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/support/claim-and-hold.ts', redis.url, String(LEASE_MS), 'doomed'], { stdio: ['ignore', 'pipe', 'inherit'] });
  for (const s of servers) await s.app.worker?.stop();
  const job = await q.add({ keyId: 1, request: { ...(await import('../src/request/schema.ts')).parseRequest(JSON.parse(body(7))), model_id: 'tiny-demo', seed: 7 },
    baseUrl: servers[0]!.url, filePrefix: 'failover' });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  while (!out.includes(`claimed ${job.id}`)) await new Promise((r) => setTimeout(r, 20));
  for (const s of servers) s.app.worker?.start();
  child.kill('SIGKILL');
  const killed = performance.now();
  let back = 0;
  for (;;) {
    const j = await q.getJob(job.id);
    if (j && j.worker && j.worker !== 'doomed' && (j.status === 'running' || j.status === 'success')) { back = performance.now() - killed; break; }
    await new Promise((r) => setTimeout(r, 20));
  }
  console.log(`failover: job running again ${(back / 1000).toFixed(2)} s after kill -9 (lease ${LEASE_MS / 1000} s; goal <= lease + 5 s)`);
  for (const s of servers) await s.app.close();
  }
} finally {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await s3.stop();
  await redis.stop();
}
