// The pool's queue on a real redis-server with BullMQ: the same lease scenarios as on SQLite (D1, D2, idempotent
// completion with its webhook, D3), persistence across a Redis restart, model affinity, pinned jobs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { RedisQueue } from '../../src/jobs/redis-queue.ts';
import { RedisOutbox } from '../../src/worker/redis-outbox.ts';
import { WebhookSender } from '../../src/worker/webhooks.ts';
import { parseRequest } from '../../src/request/schema.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
let n = 0;
before(async () => { redis = await startRedis(); });
after(async () => { await redis.stop(); });

const req = (model = 'm') => ({ ...parseRequest({ controlnet_model: 'canny', init_image: 'https://e/x.png' }), model_id: model, seed: 1 });
const result = (x: string) => ({ output: [x], proxy_links: [x], nsfw_content_detected: false, generationTime: 1, meta: {} });
/** A queue in its own key space (prefix) so that tests do not see each other's jobs. */
const open = (prefix: string, lockMs = 600, extra: { now?: () => number; affinityMaxWaitMs?: number } = {}) =>
  new RedisQueue(redis.client(), { prefix, lockMs, pollMs: 50, ...extra });

async function until<T>(fn: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a live lease is never taken back (D2); after kill -9 of its worker, another takes it once the lease expired (D1)', async () => {
  const prefix = `t${++n}`;
  const q2 = open(prefix);
  try {
    const a = await q2.add({ keyId: 1, request: req(), baseUrl: 'http://h', filePrefix: 'a' });
    const child = spawn(process.execPath, ['--import', 'tsx', 'tests/support/claim-and-hold.ts', `${redis.url}`, '600', 'w1'],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env } });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    // The child's queue uses the default prefix: re-add under it.
    const q1view = open('cn');
    const b = await q1view.add({ keyId: 1, request: req(), baseUrl: 'http://h', filePrefix: 'b' });
    await until(async () => out.includes(`claimed ${b.id}`), 20_000, 'the child to claim');
    // While the child renews its lease (several lease lengths), no other worker may take the job.
    const t0 = Date.now();
    while (Date.now() - t0 < 2000) {
      await q1view.moveStalledJobsToWait();
      assert.equal(await q1view.moveToActive({ worker: 'w2', lockMs: 600 }), undefined, 'a job with a live lease is not handed out again');
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal((await q1view.getJob(b.id))!.worker, 'w1');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const killedAt = Date.now();
    const again = await until(async () => {
      await q1view.moveStalledJobsToWait();
      return q1view.moveToActive({ worker: 'w2', lockMs: 600 });
    }, 10_000, 'the job to come back');
    const failover = Date.now() - killedAt;
    assert.equal(again.job.id, b.id);
    assert.equal(again.job.attempts, 2);
    assert.ok(failover < 600 + 5000, `back in the queue ${failover} ms after kill -9 (lease 600 ms)`);
    assert.ok(await q1view.moveToCompleted(b.id, again.token, result('ok')));
    assert.equal((await q2.getJob(a.id))!.status, 'queued', 'another key space is untouched');
    await q1view.close();
  } finally {
    await q2.close();
  }
});

test('completion is idempotent and stores the result and its webhook atomically; progress only from the lease holder', async () => {
  const prefix = `t${++n}`;
  const q1 = open(prefix, 300); const q2 = open(prefix, 300);
  try {
    const j = await q1.add({ keyId: 1, request: req(), baseUrl: 'http://h', filePrefix: 'a' });
    assert.equal(await q1.pendingForKey(1), 1);
    const r1 = (await q1.moveToActive({ worker: 'w1', lockMs: 300 }))!;
    await q1.updateProgress(j.id, r1.token, 1, 2, { seconds: 12.25, at: 1000 });
    assert.equal((await q2.getJob(j.id))!.step, 1, 'progress is visible from any server');
    assert.deepEqual((await q2.getJob(j.id))!.eta, { seconds: 12.25, at: 1000 }, 'and so is the runner\'s eta');
    // w1 stalls past its lease (no renewals); w2 takes the job back and runs it again.
    const r2 = await until(async () => {
      await q2.moveStalledJobsToWait();
      return q2.moveToActive({ worker: 'w2', lockMs: 300 });
    }, 10_000, 'the stalled job');
    assert.equal(await q1.extendLock(j.id, r1.token, 300), false, 'the stalled run lost its lease');
    await q1.updateProgress(j.id, r1.token, 2, 2);
    assert.equal((await q2.getJob(j.id))!.step, 0, 'a lost lease writes no progress');
    assert.equal((await q2.getJob(j.id))!.eta, undefined, 'a new run starts without the old run\'s eta');
    const hook = (who: string) => ({ url: 'http://hook/', body: { who } });
    assert.equal(await q1.moveToCompleted(j.id, r1.token, result('first'), hook('first')), true, 'the first completion wins');
    assert.equal(await q2.moveToCompleted(j.id, r2.token, result('second'), hook('second')), false);
    const done = (await q2.getJob(j.id))!;
    assert.equal(done.status, 'success');
    assert.equal(done.result!.output[0], 'first');
    assert.equal(await q1.pendingForKey(1), 0);
    const outbox = new RedisOutbox(redis.client(), prefix);
    assert.equal((await outbox.status(j.id)).length, 1);
    const [d] = await outbox.claimDue(Date.now(), 10, 1000);
    assert.equal(JSON.parse(d!.body).who, 'first');
    assert.deepEqual(await q1.getJobCounts(), { queued: 0, running: 0 });
    const w = await q1.waitUntilFinished(j.id, 10);
    assert.equal(w!.status, 'success');
  } finally {
    await q1.close(); await q2.close();
  }
});

test('two servers polling one Redis outbox send each delivery once (D3)', async () => {
  const prefix = `t${++n}`;
  let posts = 0;
  const server = http.createServer((req, res) => { posts++; req.resume(); setTimeout(() => res.writeHead(200).end('ok'), 300); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  try {
    const opts = { maxAttempts: 3, baseDelayMs: 1000, fetch: { allow: ['127.0.0.1'] } };
    const a = new WebhookSender(new RedisOutbox(redis.client(), prefix), opts);
    const b = new WebhookSender(new RedisOutbox(redis.client(), prefix), opts);
    for (let i = 1; i <= 3; i++) await new RedisOutbox(redis.client(), prefix).add(i, url, { id: i }, Date.now());
    a.start(20); b.start(20);
    await new Promise((r) => setTimeout(r, 900));
    await a.stop(); await b.stop();
    assert.equal(posts, 3);
    for (let i = 1; i <= 3; i++) assert.deepEqual((await a.status(i)).map((x) => x.status), ['delivered']);
  } finally {
    server.close();
  }
});

test('an accepted job survives a Redis restart (append-only file)', async () => {
  const prefix = `t${++n}`;
  let q = open(prefix);
  const j = await q.add({ keyId: 3, request: req(), baseUrl: 'http://h', filePrefix: 'a' });
  await q.close();
  await redis.restart();
  q = open(prefix);
  try {
    assert.equal((await q.getJob(j.id))!.status, 'queued');
    assert.equal((await q.moveToActive({ worker: 'w', lockMs: 5000 }))!.job.id, j.id);
  } finally {
    await q.close();
  }
});

test('model affinity: loaded models first, a starved model is not left behind, never a model not installed; pinned jobs', async () => {
  const prefix = `t${++n}`;
  let now = 1_000_000;
  const q = open(prefix, 5000, { now: () => now, affinityMaxWaitMs: 10_000 });
  try {
    const add = (model: string, pinnedTo?: string) => q.add({ keyId: 1, request: req(model), baseUrl: 'http://h', filePrefix: model, pinnedTo });
    const m1 = await add('m1');
    const m2 = await add('m2');
    const m3 = await add('m3');
    const models = { installed: ['m1', 'm2'], loaded: ['m2'] };
    const first = (await q.moveToActive({ worker: 'w', lockMs: 5000, models }))!;
    assert.equal(first.job.id, m2.id, 'the loaded model first, though m1 is older');
    const m2b = await add('m2');
    // BullMQ stamps jobs with the real clock: move ours 11 s ahead so m1's job counts as waiting too long.
    now = Date.now() + 11_000;
    const second = (await q.moveToActive({ worker: 'w', lockMs: 5000, models }))!;
    assert.equal(second.job.id, m1.id, 'a model waiting longer than affinityMaxWaitMs goes first');
    const third = (await q.moveToActive({ worker: 'w', lockMs: 5000, models }))!;
    assert.equal(third.job.id, m2b.id);
    assert.equal(await q.moveToActive({ worker: 'w', lockMs: 5000, models }), undefined, 'm3 is not installed here');
    assert.equal((await q.getJob(m3.id))!.status, 'queued');
    assert.deepEqual((await q.getJobCountsByModel()).m3, { queued: 1, running: 0 });
    const pinned = await add('m1', 'server-b');
    assert.equal(await q.moveToActive({ worker: 'server-a', lockMs: 5000, models: { installed: ['m1'], loaded: [] } }), undefined);
    assert.equal((await q.moveToActive({ worker: 'server-b', lockMs: 5000, models: { installed: ['m1'], loaded: [] } }))!.job.id, pinned.id);
    assert.equal(await q.ahead(m3.id), 4, 'the running jobs are ahead of the queued one');
    const ahead = await q.jobsAhead(m3.id);
    assert.deepEqual(ahead.map((j) => j.status), ['running', 'running', 'running', 'running'], 'the running jobs first');
    assert.deepEqual(ahead.map((j) => j.id), [...ahead.map((j) => j.id)].sort((x, y) => x - y));
  } finally {
    await q.close();
  }
});

test('waitUntilFinished: the finished job, whether this process or another server completed it; its state after the window', async () => {
  const prefix = `t${++n}`;
  const here = open(prefix, 5000); const other = open(prefix, 5000);
  try {
    for (const [finisher, label] of [[here, 'finished here'], [other, 'finished by another server']] as const) {
      const j = await here.add({ keyId: 1, request: req(), baseUrl: 'http://h', filePrefix: label });
      const waiting = here.waitUntilFinished(j.id, 20_000);
      const a = (await finisher.moveToActive({ worker: 'w', lockMs: 5000 }))!;
      assert.equal(a.job.id, j.id);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(await finisher.moveToCompleted(j.id, a.token, result(label)));
      const done = await waiting;
      assert.equal(done?.status, 'success', label);
      assert.equal(done?.result?.output[0], label);
      assert.equal(await here.getJobState(j.id), 'success');
    }
    const q = await here.add({ keyId: 1, request: req(), baseUrl: 'http://h', filePrefix: 'late' });
    assert.equal((await here.waitUntilFinished(q.id, 300))?.status, 'queued', 'after the window: as it is now');
    assert.equal(await here.getJobState(999_999), undefined);
  } finally {
    await here.close(); await other.close();
  }
});

test('routing on the whole model set: a server takes a job only with its base model and every ControlNet, LoRA and VAE', async () => {
  const prefix = `t${++n}`;
  const q = open(prefix, 5000);
  try {
    const add = (extra: Record<string, unknown>) => q.add({ keyId: 1, request: { ...req('m1'), ...extra } as ReturnType<typeof req>,
      baseUrl: 'http://h', filePrefix: 'x' });
    const both = await add({ controlnet_model: ['canny', 'depth'] });
    const lora = await add({ controlnet_model: ['canny'], lora_model: ['style'] });
    const plain = await add({ controlnet_model: ['canny'] });
    const cannyOnly = { installed: ['m1'], loaded: [], extras: { controlnet: ['canny'], lora: [], vae: [] } };
    assert.equal((await q.moveToActive({ worker: 'a', lockMs: 5000, models: cannyOnly }))!.job.id, plain.id,
      'the older jobs need depth or a LoRA this server lacks');
    assert.equal(await q.moveToActive({ worker: 'a', lockMs: 5000, models: cannyOnly }), undefined);
    const withLora = { ...cannyOnly, extras: { ...cannyOnly.extras, lora: ['style'] } };
    assert.equal((await q.moveToActive({ worker: 'b', lockMs: 5000, models: withLora }))!.job.id, lora.id);
    const all = { ...cannyOnly, extras: { controlnet: ['canny', 'depth'], lora: [], vae: [] } };
    assert.equal((await q.moveToActive({ worker: 'c', lockMs: 5000, models: { ...all, installed: ['m2'] } })), undefined, 'not without the base');
    assert.equal((await q.moveToActive({ worker: 'c', lockMs: 5000, models: all }))!.job.id, both.id);
    assert.deepEqual(Object.keys(await q.getJobCountsByModel()), ['m1'], 'queue depths per base model');
  } finally {
    await q.close();
  }
});
