// Routing and webhooks between real servers of one pool (a real redis-server, a real S3-compatible server, three
// `controlnet serve` processes on loopback with their own DATA_DIRs): `loadbalancer: "no"` keeps a job on the server
// that received it, though another server is idle (SPEC.md); without it the idle server takes work; a job whose
// ControlNets one server lacks runs on the other, and one no server can run is a 422; a job accepted
// by a server that runs no jobs (`serve --no-worker`) runs on another one, and its webhook reaches the client
// exactly once although every server's webhook sender polls the pool's outbox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { startRedis } from '../support/redis.ts';
import { startWebhookReceiver } from '../support/webhook-receiver.ts';
import { startS3 } from '../support/s3.ts';
import { post, startPoolServer, stopPoolServers, type PoolServer } from '../support/pool-server.ts';

const KEY = 'routing-test-key-0123456789abcdef';

test('loadbalancer "no" stays on the receiving server; a job run on another server sends its webhook once', { timeout: 240_000 }, async () => {
  const redis = await startRedis();
  const s3 = await startS3();
  const receiver = await startWebhookReceiver(1000); // answers late: the POST stays in flight while others poll
  const { hooks, url: webhook } = receiver;
  const servers: PoolServer[] = [];
  const r = redis.client();
  const workerOf = async (id: number) => r.hget(`cn:job:${id}`, 'worker');
  const statusOf = async (id: number) => r.hget(`cn:job:${id}`, 'status');
  const until = async (what: string, ms: number, fn: () => Promise<boolean> | boolean) => {
    const end = Date.now() + ms;
    while (!(await fn())) {
      if (Date.now() > end) throw new Error(`timed out: ${what}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  try {
    const env = { REDIS_URL: redis.url, ...s3.env, CONTROLNET_API_KEY: KEY, ALLOW_PRIVATE_HOSTS: '127.0.0.1' };
    const dir = (n: string) => mkdtempSync(join(tmpdir(), `cn-route-${n}-`));
    await Promise.all([startPoolServer('a', dir('a'), env, [], servers), startPoolServer('b', dir('b'), env, [], servers),
      startPoolServer('c', dir('c'), env, ['--no-worker'], servers)]);
    servers.sort((x, y) => x.id.localeCompare(y.id));
    const [, b, c] = servers as [PoolServer, PoolServer, PoolServer];
    const img = (await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 30, g: 160, b: 90 } } }).png().toBuffer()).toString('base64');
    const send = async (s: PoolServer, extra: Record<string, unknown>) => {
      const res = await post(`${s.url}/api/v6/images/controlnet`, { key: KEY, controlnet_model: 'canny', init_image: img, width: 64, height: 64,
        num_inference_steps: 2, ...extra });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.id as number;
    };
    const finished = (ids: number[]) => until(`${ids.length} jobs`, 120_000, async () => (await Promise.all(ids.map(statusOf))).every((s) => s === 'success'));

    // Pinned: four jobs at once to b while a is idle; every one runs on b.
    const pinned = await Promise.all([0, 1, 2, 3].map((i) => send(b, { loadbalancer: 'no', seed: i })));
    await finished(pinned);
    assert.deepEqual(await Promise.all(pinned.map(workerOf)), ['b', 'b', 'b', 'b'], 'loadbalancer "no": run where received');
    // The same without it: the idle server takes some (the check above could fail).
    const spread = await Promise.all([0, 1, 2, 3].map((i) => send(b, { seed: 10 + i })));
    await finished(spread);
    const ranOn = await Promise.all(spread.map(workerOf));
    assert.ok(ranOn.includes('a'), `without loadbalancer "no" the idle server takes work: ${ranOn}`);

    // Routing on the whole model set: b loses its depth ControlNet; jobs that need it run on a only, though b is idle.
    rmSync(join(b.dir, 'models', 'controlnet', 'depth'), { recursive: true, force: true });
    await new Promise((res) => setTimeout(res, 2500)); // b's next heartbeats say so
    const [a] = servers as [PoolServer];
    const depth = await Promise.all([0, 1, 2].map((i) => send(b, { controlnet_model: 'canny,depth', seed: 30 + i })));
    await finished(depth);
    assert.deepEqual(await Promise.all(depth.map(workerOf)), ['a', 'a', 'a'], 'only the server with every ControlNet takes them');
    // No live server has depth: the same 422 as on one machine, at acceptance, from any server.
    rmSync(join(a.dir, 'models', 'controlnet', 'depth'), { recursive: true, force: true });
    await new Promise((res) => setTimeout(res, 2500));
    const refused = await post(`${c.url}/api/v6/images/controlnet`, { key: KEY, controlnet_model: 'canny,depth', init_image: img, width: 64, height: 64 });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.match(JSON.stringify(refused.body), /controlnet_model \\"depth\\" is not installed/);

    // c runs no jobs: what it accepts runs on a or b, and each webhook is POSTed once (three servers poll the outbox).
    const tracks = ['w0', 'w1', 'w2', 'w3'];
    const hooked = await Promise.all(tracks.map((t, i) => send(c, { webhook, track_id: t, seed: 20 + i })));
    await finished(hooked);
    const where = await Promise.all(hooked.map(workerOf));
    assert.ok(where.every((w) => w === 'a' || w === 'b'), `run on another server: ${where}`);
    await until('every webhook', 30_000, () => tracks.every((t) => (hooks.get(t) ?? 0) >= 1));
    await new Promise((res) => setTimeout(res, 3000)); // time for a duplicate to arrive
    assert.deepEqual(tracks.map((t) => hooks.get(t)), [1, 1, 1, 1], 'each webhook delivered exactly once');
    // Fetch from the server that accepted it sees the result of the server that ran it.
    const f = await post(`${c.url}/api/v6/images/fetch/${hooked[0]}`, { key: KEY });
    assert.equal(f.body.status, 'success');
  } finally {
    r.disconnect();
    await stopPoolServers(servers);
    receiver.close();
    await s3.stop();
    await redis.stop();
  }
});
