// Three servers behind one key: a real redis-server, a real S3-compatible server (SeaweedFS, signatures checked) and
// three `controlnet serve` processes on loopback with their own DATA_DIRs, as three machines would have. 60 requests
// go to the first server with its key; one server is killed with kill -9 mid-job; every job still finishes, each is
// fetchable from every surviving server with images readable from their links; the killed server rejoins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { startRedis } from '../support/redis.ts';
import { startS3 } from '../support/s3.ts';
import { post, startPoolServer, stopPoolServers, type PoolServer } from '../support/pool-server.ts';

const KEY = 'first-server-key-0123456789abcdef';

type Server = PoolServer;

test('three servers, one key: 60 requests spread over the pool; kill -9 mid-job loses nothing; the server rejoins', { timeout: 240_000 }, async () => {
  const redis = await startRedis();
  const s3 = await startS3();
  const servers: Server[] = [];
  const start = (id: string, dir: string, extraEnv: Record<string, string> = {}, into?: Server[]) =>
    startPoolServer(id, dir, { REDIS_URL: redis.url, ...s3.env, ...extraEnv }, [], into);
  const details = async (s: Server) => (await post(`${s.url}/api/v1/enterprise/system_details`, { key: KEY })).body;
  try {
    const dirs = [1, 2, 3].map((i) => mkdtempSync(join(tmpdir(), `cn-pool-${i}-`)));
    await Promise.all(dirs.map((d, i) => start(`s${i + 1}`, d, i === 0 ? { CONTROLNET_API_KEY: KEY } : {}, servers)));
    servers.sort((x, y) => x.id.localeCompare(y.id));
    const [s1, s2, s3srv] = servers as [Server, Server, Server];

    const img = (await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 9, g: 99, b: 199 } } }).png().toBuffer()).toString('base64');
    const ids: number[] = [];
    for (let i = 0; i < 60; i++) {
      const r = await post(`${s1.url}/api/v6/images/controlnet`, { key: KEY, controlnet_model: 'canny', init_image: img, width: 64, height: 64,
        num_inference_steps: 2, strength: 1, seed: i, temp: i % 2 ? 'yes' : 'no' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      ids.push(r.body.id);
    }
    // A request for a model no live server has: the same 422 as on one machine.
    const missing = await post(`${s2.url}/api/v6/images/controlnet`, { key: KEY, controlnet_model: 'canny', init_image: img, model_id: 'nowhere' });
    assert.equal(missing.status, 422);

    // Kill server 2 with kill -9 while it runs a job (after it finished at least one).
    let victimJob: number | undefined;
    for (let i = 0; i < 3000 && victimJob === undefined; i++) {
      const d = await details(s1);
      const me = d.pool.servers.find((x: { id: string }) => x.id === 's2');
      if (me?.busy && me.jobs_completed > 0) victimJob = me.job;
      else await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(victimJob, 'server 2 ran jobs');
    s2.child.kill('SIGKILL');
    await new Promise((r) => s2.child.once('exit', r));

    // Every job finishes, fetchable from each surviving server.
    const done = new Map<number, any>();
    const deadline = Date.now() + 150_000;
    while (done.size < ids.length && Date.now() < deadline) {
      for (const id of ids) {
        if (done.has(id)) continue;
        const f = await post(`${s3srv.url}/api/v6/images/fetch/${id}`, { key: KEY });
        if (f.body.status === 'success') done.set(id, f.body);
        else assert.equal(f.body.status, 'processing', JSON.stringify(f.body));
      }
      if (done.size < ids.length) await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(done.size, ids.length, `${ids.length - done.size} jobs did not finish`);
    assert.ok(done.has(victimJob!), 'the job running on the killed server finished elsewhere');
    for (const [i, id] of ids.entries()) {
      const f1 = await post(`${s1.url}/api/v6/images/fetch/${id}`, { key: KEY });
      assert.equal(f1.body.status, 'success');
      assert.deepEqual(f1.body.output, done.get(id).output, 'one result, the same from every server');
      if (i % 10 === 0 || id === victimJob) {
        // Temp links are presigned bucket URLs, read as a client would (the S3 server checks their signature); the
        // others are served by any server from the bucket.
        const link = f1.body.output[0] as string;
        const presigned = link.includes('X-Amz-Signature');
        const res = await fetch(link);
        assert.equal(res.status, 200, `${presigned ? 'presigned' : 'server'} link: ${res.status}`);
        const bytes = Buffer.from(await res.arrayBuffer());
        const meta = await sharp(bytes).metadata();
        assert.equal(meta.width, 64);
        if (!presigned) {
          const other = link.replace(s1.url, s3srv.url);
          assert.equal((await fetch(other)).status, 200, 'readable through another server too');
        }
      }
    }
    const d = await details(s1);
    assert.equal(d.status, 'ok');
    assert.equal(typeof d.model_count, 'number');
    assert.equal(typeof d.queue_time, 'number');
    const byId = Object.fromEntries(d.pool.servers.map((x: { id: string }) => [x.id, x]));
    assert.equal(byId.s2.alive, false, 'the killed server is marked lost');
    for (const id of ['s1', 's2', 's3']) assert.ok(byId[id].jobs_completed > 0, `${id} ran jobs: ${JSON.stringify(byId[id])}`);
    assert.deepEqual(byId.s1.installed_models, ['tiny-demo']);
    assert.ok('tiny-demo' in d.pool.queues);
    // (A sum of jobs_completed is not exact: the killed server may have finished a job after its last heartbeat.)

    // Server 2 restarted with the same id rejoins.
    servers[1] = await start('s2', s2.dir);
    for (let i = 0; i < 50; i++) {
      const again = (await details(s1)).pool.servers.find((x: { id: string }) => x.id === 's2');
      if (again.alive) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal((await details(s1)).pool.servers.find((x: { id: string }) => x.id === 's2').alive, true);
    // A graceful stop (SIGTERM) leaves the pool at once.
    servers[2]!.child.kill('SIGTERM');
    await new Promise((r) => servers[2]!.child.once('exit', r));
    assert.equal((await details(s1)).pool.servers.find((x: { id: string }) => x.id === 's3').alive, false);
  } finally {
    await stopPoolServers(servers);
    await s3.stop();
    await redis.stop();
  }
});
