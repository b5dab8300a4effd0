// Pool-wide keys, rate limits and the server registry on a real redis-server: two "servers" with their own
// DATA_DIR (their own SQLite keys) and one Redis.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../../src/jobs/db.ts';
import { hashKey, KeyStore } from '../../src/api/keys.ts';
import { PoolKeys } from '../../src/cluster/pool-keys.ts';
import { PoolGate } from '../../src/cluster/pool-gate.ts';
import { RedisQueue } from '../../src/jobs/redis-queue.ts';
import { parseRequest } from '../../src/request/schema.ts';
import { ServerRegistry, type ServerRecord } from '../../src/cluster/registry.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
before(async () => { redis = await startRedis(); });
after(async () => { await redis.stop(); });

test('a key created on one server works on every server, with one pool-wide id; admin stays admin', async () => {
  const dirs = [mkdtempSync(join(tmpdir(), 'cn-pk-')), mkdtempSync(join(tmpdir(), 'cn-pk-'))];
  const dbs = dirs.map((d) => openDb(d));
  try {
    const a = new PoolKeys(redis.client(), 'pk', new KeyStore(dbs[0]!));
    const b = new PoolKeys(redis.client(), 'pk', new KeyStore(dbs[1]!));
    const local = new KeyStore(dbs[0]!).create({ admin: true }).key; // made before the server joined the pool
    await a.publishLocal();
    const k = a.create().key;
    a.add('operator-key-0123456789abcdef', { admin: true });
    const onA = (await a.verify(k))!;
    const onB = (await b.verify(k))!;
    assert.deepEqual(onA, onB, 'the same key id on both servers (a job\'s owner is the same everywhere)');
    assert.equal(onB.admin, false);
    assert.equal((await b.verify(local))!.admin, true);
    assert.equal((await b.verify('operator-key-0123456789abcdef'))!.admin, true);
    assert.equal(await b.verify('cn_not-a-key-at-all-000000000000000'), undefined);
    assert.equal(await b.verify(undefined), undefined);
  } finally {
    for (const db of dbs) db.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});

test('the per-key rate limit holds across servers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-rl-'));
  const db = openDb(dir);
  try {
    const keys = new PoolKeys(redis.client(), 'rl', new KeyStore(db));
    const [k1, k2] = [keys.create().key, keys.create().key];
    const a = new PoolGate(redis.client(), 'rl', 3, () => keys.flush());
    const b = new PoolGate(redis.client(), 'rl', 3, () => keys.flush());
    assert.equal((await a.admit(k1))!.retryAfter, 0);
    assert.equal((await b.admit(k1))!.retryAfter, 0);
    assert.equal((await a.admit(k1))!.retryAfter, 0);
    const wait = (await b.admit(k1))!.retryAfter;
    assert.ok(wait >= 1 && wait <= 20, `the 4th request in a minute waits (${wait} s), on whichever server`);
    assert.equal((await b.admit(k2))!.retryAfter, 0, 'another key is not affected');
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('registry: servers alive while they beat, lost when silent, gone when they leave, back when they rejoin', async () => {
  const r = new ServerRegistry(redis.client(), 'reg', 200);
  const rec = (id: string): ServerRecord => ({ id, alive: true, busy: false, job: null, loaded_models: [], installed_models: ['m'],
    jobs_completed: 0, jobs_failed: 0, last_seen: 0, started_at: 0, worker: true, installed: { base: ['m'] } });
  await r.beat(rec('a'));
  await r.beat(rec('b'));
  assert.deepEqual((await r.list()).map((s) => [s.id, s.alive]), [['a', true], ['b', true]]);
  await r.leave(rec('b'));
  await new Promise((res) => setTimeout(res, 700)); // 'a' silent for over 3 periods
  assert.deepEqual((await r.list()).map((s) => [s.id, s.alive]), [['a', false], ['b', false]]);
  await r.beat(rec('a'));
  assert.equal((await r.list()).find((s) => s.id === 'a')!.alive, true, 'the same id rejoins');
});

test('admission in one script: the same key record as PoolKeys, a rate token, the queue\'s unfinished count', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-gate-'));
  const db = openDb(dir);
  const q = new RedisQueue(redis.client(), { prefix: 'gate', lockMs: 5000 });
  try {
    const keys = new PoolKeys(redis.client(), 'gate', new KeyStore(db));
    const user = keys.create().key;
    const admin = keys.create({ admin: true }).key;
    const gate = new PoolGate(redis.client(), 'gate', 2, () => keys.flush());
    assert.equal(await gate.admit('cn_unknown-key-000000000000000000'), undefined, 'an unknown key is not admitted');
    const u = (await keys.verify(user))!;
    const a1 = (await gate.admit(user))!;
    assert.deepEqual(a1, { key: { id: u.id, admin: false }, retryAfter: 0, pending: 0 });
    assert.equal((await gate.admit(admin))!.key.admin, true);
    assert.equal((await gate.admit(user))!.retryAfter, 0);
    const a3 = (await gate.admit(user))!;
    assert.ok(a3.retryAfter >= 1 && a3.retryAfter <= 30, `the third request in a minute waits (${a3.retryAfter} s)`);
    await q.add({ keyId: u.id, request: { ...parseRequest({ controlnet_model: 'canny', init_image: 'https://e/x.png' }), model_id: 'm' }, baseUrl: 'http://h', filePrefix: 'p' });
    assert.equal((await gate.admit(user))!.pending, 1, 'the key\'s unfinished job is counted');
    await keys.withdraw(hashKey(user));
    assert.equal(await gate.admit(user), undefined, 'a withdrawn key is refused at once');
  } finally {
    await q.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
