import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../../src/jobs/db.ts';
import { SqliteQueue, MAX_ATTEMPTS } from '../../src/jobs/sqlite-queue.ts';
import { parseRequest } from '../../src/request/schema.ts';

const req = () => ({ ...parseRequest({ controlnet_model: 'canny', init_image: 'https://e/x.png' }), model_id: 'm', seed: 1 });

test('FIFO claims, results, durability across reopen, recovery of running jobs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-q-'));
  try {
    let db = openDb(dir);
    let q = new SqliteQueue(db);
    const a = q.enqueue({ keyId: 1, request: req(), baseUrl: 'http://h', filePrefix: 'a' });
    const b = q.enqueue({ keyId: 1, request: req(), baseUrl: 'http://h', filePrefix: 'b' });
    const c = q.enqueue({ keyId: 2, request: req(), baseUrl: 'http://h', filePrefix: 'c' });
    assert.equal(q.ahead(c.id), 2);
    assert.equal(q.pendingForKey(1), 2);
    assert.equal(q.claim('w')!.id, a.id);
    assert.equal(q.claim('w')!.id, b.id);
    q.complete(a.id, { output: ['x'], proxy_links: ['x'], nsfw_content_detected: false, generationTime: 1, meta: {} });
    assert.equal(q.get(a.id)!.status, 'success');
    assert.deepEqual(q.depth(), { queued: 1, running: 1 });
    db.close(); // "crash" with b running and c queued
    db = openDb(dir);
    q = new SqliteQueue(db);
    assert.deepEqual(q.recoverRunning(), { requeued: 1, failed: 0 });
    assert.deepEqual(q.depth(), { queued: 2, running: 0 });
    assert.equal(q.claim('w2')!.id, b.id, 'the recovered job keeps its place');
    assert.equal(q.get(a.id)!.result!.output[0], 'x');
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a job that keeps killing its worker is failed after MAX_ATTEMPTS; clear fails only queued jobs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-q-'));
  try {
    const db = openDb(dir);
    const q = new SqliteQueue(db);
    const j = q.enqueue({ keyId: 1, request: req(), baseUrl: 'http://h', filePrefix: 'a' });
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      assert.equal(q.claim('w')!.id, j.id);
      q.recoverRunning();
    }
    const failed = q.get(j.id)!;
    assert.equal(failed.status, 'failed');
    assert.match(failed.error!, /given up/);
    const k = q.enqueue({ keyId: 1, request: req(), baseUrl: 'http://h', filePrefix: 'b' });
    const l = q.enqueue({ keyId: 1, request: req(), baseUrl: 'http://h', filePrefix: 'c' });
    q.claim('w');
    assert.deepEqual(q.clearQueued(), [l.id]);
    assert.equal(q.get(k.id)!.status, 'running');
    assert.equal(q.get(l.id)!.status, 'failed');
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('waitFinished resolves on finish or after the window', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-q-'));
  try {
    const db = openDb(dir);
    const q = new SqliteQueue(db);
    const j = q.enqueue({ keyId: 1, request: req(), baseUrl: 'http://h', filePrefix: 'a' });
    const t0 = Date.now();
    assert.equal((await q.waitFinished(j.id, 100))!.status, 'queued');
    assert.ok(Date.now() - t0 >= 95);
    q.claim('w');
    setTimeout(() => q.fail(j.id, 'boom', 400), 30);
    const done = await q.waitFinished(j.id, 5000);
    assert.equal(done!.status, 'failed');
    assert.equal(done!.errorStatus, 400);
    assert.ok(Date.now() - t0 < 2000);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
