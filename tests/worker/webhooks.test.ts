import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../../src/jobs/db.ts';
import { WebhookSender, SqliteOutbox, SIGNATURE_HEADER, signBody } from '../../src/worker/webhooks.ts';

/** Polls until the immediate (fire-and-forget) attempt has been recorded. */
async function attempted(s: WebhookSender, jobId: number, attempts: number): Promise<void> {
  for (let i = 0; i < 500 && ((await s.status(jobId))[0]?.attempts ?? 0) < attempts; i++) await new Promise((r) => setTimeout(r, 10));
}

test('delivery with retries and exponential backoff, signed, durable across reopen', async () => {
  const received: { body: string; sig?: string }[] = [];
  let failuresLeft = 2;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push({ body, sig: req.headers[SIGNATURE_HEADER] as string | undefined });
      if (failuresLeft-- > 0) res.writeHead(500).end();
      else res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const dir = mkdtempSync(join(tmpdir(), 'cn-wh-'));
  let now = 0;
  const opts = { secret: 'shh', maxAttempts: 5, baseDelayMs: 1000, fetch: { allow: ['127.0.0.1'] }, now: () => now };
  try {
    let db = openDb(dir);
    let s = new WebhookSender(new SqliteOutbox(db), opts);
    await s.enqueue(7, url, { status: 'success', id: 7, track_id: 'abc' });
    await attempted(s, 7, 1);
    assert.equal(received.length, 1);
    assert.deepEqual((await s.status(7)).map((x) => [x.status, x.attempts]), [['pending', 1]]);
    // Not due before the backoff has passed (1 s after attempt 1).
    now = 999;
    assert.equal(await s.deliverDue(), 0);
    db.close(); // restart: the pending delivery is in SQLite
    db = openDb(dir);
    s = new WebhookSender(new SqliteOutbox(db), opts);
    now = 1000;
    assert.equal(await s.deliverDue(), 1);
    assert.equal(received.length, 2);
    now = 1000 + 1999;
    assert.equal(await s.deliverDue(), 0, 'second backoff is 2 s');
    now = 3000;
    assert.equal(await s.deliverDue(), 1);
    assert.deepEqual((await s.status(7)).map((x) => [x.status, x.attempts]), [['delivered', 3]]);
    const body = received[2]!.body;
    assert.deepEqual(JSON.parse(body), { status: 'success', id: 7, track_id: 'abc' });
    assert.equal(received[2]!.sig, signBody('shh', body));
    assert.match(received[2]!.sig!, /^sha256=[0-9a-f]{64}$/);
    db.close();
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('gives up after maxAttempts; private webhook targets are refused without an allowlist', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-wh-'));
  let now = 0;
  try {
    const db = openDb(dir);
    const s = new WebhookSender(new SqliteOutbox(db), { maxAttempts: 2, baseDelayMs: 10, now: () => now });
    await s.enqueue(1, 'http://169.254.169.254/latest', { status: 'failed', id: 1 });
    await attempted(s, 1, 1);
    now = 100;
    await s.deliverDue();
    const st = (await s.status(1))[0]!;
    assert.equal(st.status, 'dead');
    assert.equal(st.attempts, 2);
    assert.match(st.last_error!, /not a public address/);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two processes polling one outbox send each delivery once, even while its POST is in flight (D3)', async () => {
  let posts = 0;
  const server = http.createServer((req, res) => {
    posts++;
    req.resume();
    setTimeout(() => res.writeHead(200).end('ok'), 300); // the POST is in flight while the other process polls
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const dir = mkdtempSync(join(tmpdir(), 'cn-wh-'));
  const db1 = openDb(dir); const db2 = openDb(dir);
  try {
    const opts = { maxAttempts: 3, baseDelayMs: 1000, fetch: { allow: ['127.0.0.1'] } };
    const a = new WebhookSender(new SqliteOutbox(db1), opts);
    const b = new WebhookSender(new SqliteOutbox(db2), opts);
    for (let i = 1; i <= 3; i++) await new SqliteOutbox(db1).add(i, url, { id: i }, Date.now());
    a.start(20); b.start(20);
    await new Promise((r) => setTimeout(r, 900));
    await a.stop(); await b.stop();
    assert.equal(posts, 3, 'each of the 3 deliveries was POSTed once');
    for (let i = 1; i <= 3; i++) assert.deepEqual((await a.status(i)).map((x) => x.status), ['delivered']);
  } finally {
    db1.close(); db2.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
