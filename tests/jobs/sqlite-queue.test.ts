// The SQLite queue with leases. Two connections to one DATA_DIR stand for two processes (`serve --no-worker` and
// `worker`, or two workers), as in split mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../src/jobs/db.ts';
import { SqliteQueue, MAX_ATTEMPTS } from '../../src/jobs/sqlite-queue.ts';
import { parseRequest } from '../../src/request/schema.ts';

const req = (model = 'm') => ({ ...parseRequest({ controlnet_model: 'canny', init_image: 'https://e/x.png' }), model_id: model, seed: 1 });
const result = (x: string) => ({ output: [x], proxy_links: [x], nsfw_content_detected: false, generationTime: 1, meta: {} });
const add = (q: SqliteQueue, prefix: string, keyId = 1) => q.add({ keyId, request: req(), baseUrl: 'http://h', filePrefix: prefix });

function withDir(fn: (dir: string, dbs: Db[]) => Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cn-q-'));
    const dbs: Db[] = [];
    try {
      await fn(dir, dbs);
    } finally {
      for (const db of dbs) if (db.open) db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('the jobs ahead of a queued one (the eta reads them): those running, then those queued before it', withDir(async (dir, dbs) => {
  const db = openDb(dir); dbs.push(db);
  const q = new SqliteQueue(db, () => 1000);
  const a = await add(q, 'a'); const b = await add(q, 'b'); const c = await add(q, 'c'); const d = await add(q, 'd');
  assert.equal((await q.moveToActive({ worker: 'w', lockMs: 5000 }))!.job.id, a.id);
  assert.deepEqual((await q.jobsAhead(d.id)).map((j) => [j.id, j.status]), [[a.id, 'running'], [b.id, 'queued'], [c.id, 'queued']]);
  assert.deepEqual((await q.jobsAhead(b.id)).map((j) => j.id), [a.id], 'not the ones queued after it');
  assert.deepEqual(await q.jobsAhead(a.id), [], 'the running job itself has nothing ahead');
  assert.deepEqual((await q.jobsAhead(d.id, 2)).map((j) => j.id), [a.id, b.id]);
  assert.equal((await q.jobsAhead(d.id))[1]!.filePrefix, 'b', 'whole jobs');
}));

test('FIFO claims with leases; a live lease is never taken back (D2), an expired one is (D1)', withDir(async (dir, dbs) => {
  let now = 1000;
  const clock = () => now;
  const db1 = openDb(dir); const db2 = openDb(dir); dbs.push(db1, db2);
  const w1 = new SqliteQueue(db1, clock); const w2 = new SqliteQueue(db2, clock);
  const a = await add(w1, 'a'); const b = await add(w1, 'b'); const c = await add(w1, 'c', 2);
  assert.equal(await w1.ahead(c.id), 2);
  assert.equal(await w1.pendingForKey(1), 2);
  const ra = (await w1.moveToActive({ worker: 'w1', lockMs: 5000 }))!;
  assert.equal(ra.job.id, a.id);
  const rb = (await w1.moveToActive({ worker: 'w1', lockMs: 5000 }))!;
  assert.equal(rb.job.id, b.id);
  assert.ok(await w1.moveToCompleted(a.id, ra.token, result('x')));
  assert.equal((await w2.getJob(a.id))!.status, 'success');
  assert.deepEqual(await w2.getJobCounts(), { queued: 1, running: 1 });
  // A second worker starts while b runs in the first: b's lease is live, nothing goes back (the old code re-queued it).
  now += 4000;
  assert.deepEqual(await w2.moveStalledJobsToWait(), { requeued: [], failed: [] });
  assert.equal((await w2.moveToActive({ worker: 'w2', lockMs: 5000 }))!.job.id, c.id, 'w2 takes the next queued job, not b');
  // The first worker renews b's lease while it runs...
  assert.ok(await w1.extendLock(b.id, rb.token, 5000));
  now += 4000;
  assert.deepEqual((await w2.moveStalledJobsToWait()).requeued, []);
  // ...then dies (kill -9: no more renewals). Once the lease expired a live worker takes b back and runs it.
  now += 5001;
  const swept = await w2.moveStalledJobsToWait();
  assert.ok(swept.requeued.includes(b.id));
  const rb2 = (await w2.moveToActive({ worker: 'w2', lockMs: 5000 }))!;
  assert.equal(rb2.job.id, b.id, 'the recovered job keeps its place');
  assert.equal(rb2.job.attempts, 2);
  assert.equal(await w1.extendLock(b.id, rb.token, 5000), false, 'the dead run lost its lease');
  await w1.updateProgress(b.id, rb.token, 9, 10, { seconds: 1, at: now });
  assert.equal((await w2.getJob(b.id))!.step, 0, 'a lost lease writes no progress');
  assert.equal((await w2.getJob(b.id))!.eta, undefined, 'nor its eta');
  await w2.updateProgress(b.id, rb2.token, 3, 10, { seconds: 42.5, at: now });
  assert.equal((await w1.getJob(b.id))!.step, 3);
  assert.deepEqual((await w1.getJob(b.id))!.eta, { seconds: 42.5, at: now }, 'the runner\'s eta is read by the other process');
  assert.equal((await w1.getJob(a.id))!.result!.output[0], 'x');
}));

test('completion is idempotent and stores the result and its webhook in one transaction', withDir(async (dir, dbs) => {
  let now = 0;
  const db1 = openDb(dir); const db2 = openDb(dir); dbs.push(db1, db2);
  const q1 = new SqliteQueue(db1, () => now); const q2 = new SqliteQueue(db2, () => now);
  const j = await add(q1, 'a');
  const r1 = (await q1.moveToActive({ worker: 'w1', lockMs: 100 }))!;
  now = 200; // w1 stalls past its lease; w2 runs the job again
  await q2.moveStalledJobsToWait();
  const r2 = (await q2.moveToActive({ worker: 'w2', lockMs: 100 }))!;
  const hook = (who: string) => ({ url: 'http://hook/', body: { who } });
  assert.equal(await q1.moveToCompleted(j.id, r1.token, result('first'), hook('first')), true, 'the first completion wins');
  assert.equal(await q2.moveToCompleted(j.id, r2.token, result('second'), hook('second')), false);
  assert.equal(await q2.moveToFailed(j.id, r2.token, { message: 'late', httpStatus: 500 }, hook('late')), false);
  const done = (await q2.getJob(j.id))!;
  assert.equal(done.status, 'success');
  assert.equal(done.result!.output[0], 'first', "the second run's outputs are discarded");
  const hooks = await q1.outbox.status(j.id);
  assert.equal(hooks.length, 1, 'one webhook: the winner\'s');
  const [row] = await q1.outbox.claimDue(now, 10, 1000);
  assert.equal(JSON.parse(row!.body).who, 'first');
  // A failure is stored with its webhook the same way.
  const k = await add(q1, 'b');
  const rk = (await q1.moveToActive({ worker: 'w1', lockMs: 100 }))!;
  assert.ok(await q1.moveToFailed(k.id, rk.token, { message: 'bad image', httpStatus: 400 }, hook('fail')));
  assert.equal((await q2.getJob(k.id))!.errorStatus, 400);
  assert.equal((await q2.outbox.status(k.id)).length, 1);
  // Without a webhook nothing is queued.
  const l = await add(q1, 'c');
  const rl = (await q1.moveToActive({ worker: 'w1', lockMs: 100 }))!;
  assert.ok(await q1.moveToCompleted(l.id, rl.token, result('y')));
  assert.equal((await q1.outbox.status(l.id)).length, 0);
}));

test('a job that keeps killing its worker is failed after MAX_ATTEMPTS; a handed-back job does not count; drain fails only queued jobs', withDir(async (dir, dbs) => {
  let now = 0;
  const db = openDb(dir); dbs.push(db);
  const q = new SqliteQueue(db, () => now);
  const j = await add(q, 'a');
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    assert.equal((await q.moveToActive({ worker: 'w', lockMs: 10 }))!.job.id, j.id);
    now += 11;
    await q.moveStalledJobsToWait();
  }
  const failed = (await q.getJob(j.id))!;
  assert.equal(failed.status, 'failed');
  assert.match(failed.error!, /given up/);
  const k = await add(q, 'b');
  const rk = (await q.moveToActive({ worker: 'w', lockMs: 10_000 }))!;
  await q.moveToWait(k.id, rk.token); // graceful shutdown hands it back at once
  const again = (await q.moveToActive({ worker: 'w2', lockMs: 10_000 }))!;
  assert.equal(again.job.id, k.id);
  assert.equal(again.job.attempts, 1, 'a hand-back is not a failed attempt');
  const l = await q.add({ keyId: 1, request: { ...req(), webhook: 'http://hook/' }, baseUrl: 'http://h', filePrefix: 'c' });
  const m = await add(q, 'd');
  const ids = await q.drain('cleared', (job) => job.request.webhook ? { url: job.request.webhook, body: { id: job.id } } : undefined);
  assert.deepEqual(ids, [l.id, m.id]);
  assert.equal((await q.getJob(k.id))!.status, 'running');
  assert.equal((await q.getJob(l.id))!.errorStatus, 503);
  assert.equal((await q.outbox.status(l.id)).length, 1);
  assert.equal((await q.outbox.status(m.id)).length, 0);
  assert.deepEqual(await q.getJobCountsByModel(), { m: { queued: 0, running: 1 } });
}));

test('waitUntilFinished resolves on finish (this process or another) or after the window', withDir(async (dir, dbs) => {
  const db1 = openDb(dir); const db2 = openDb(dir); dbs.push(db1, db2);
  const q = new SqliteQueue(db1, Date.now, 50); const other = new SqliteQueue(db2);
  const j = await add(q, 'a');
  const t0 = Date.now();
  assert.equal((await q.waitUntilFinished(j.id, 100))!.status, 'queued');
  assert.ok(Date.now() - t0 >= 95);
  const r = (await other.moveToActive({ worker: 'w', lockMs: 10_000 }))!;
  setTimeout(() => void other.moveToFailed(j.id, r.token, { message: 'boom', httpStatus: 400 }), 30);
  const done = await q.waitUntilFinished(j.id, 5000);
  assert.equal(done!.status, 'failed');
  assert.equal(done!.errorStatus, 400);
  assert.ok(Date.now() - t0 < 2000);
}));
