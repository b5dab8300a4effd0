// The eta a fetch answers for queued and running jobs, on a real server with the real engine on the tiny demo
// models, slowed by the engine's test delays: after one request taught the server its seconds per unit, three
// identical requests are queued at once; the eta of each, answered while it waits or runs, is within ±25% of
// the time it really took to finish, and system_details' queue_time is the last one's. Also: the learned rates are kept in the DATA_DIR database, so a second
// server on the same DATA_DIR starts from them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { createApp } from '../../src/api/app.ts';
import { createDemoModels } from '../../src/engine/models/demo.ts';
import { engineFactory } from '../../src/worker/engine-factory.ts';
import { PRIOR_SECONDS_PER_UNIT } from '../../src/worker/eta.ts';
import { tinyPngBase64 } from './harness.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'cn-eta-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

test('a queued job\'s eta: the jobs ahead of it and its own work, within ±25% of when it really finished', async (t) => {
  await createDemoModels(join(dataDir, 'models'), { baseId: 'tiny-demo', types: ['canny'] });
  // ms per unit (phases.ts): a 64² CFG step with one ControlNet is 0.016 megapixel-passes, ~1.6 s here
  const engineTestDelays = { build: 300, load: 200, encode: 300, step: 100_000, decode: 150_000 };
  const cfg = loadConfig({}, { dataDir, port: 0, host: '127.0.0.1', engineThreads: 1, waitWindowMs: 0, rateLimitPerMinute: 10_000, engineTestDelays, logLevel: 'silent' });
  const app = await createApp(cfg, { engine: engineFactory(cfg) });
  let learned = NaN;
  try {
    const key = app.ctx.keys.create().key;
    const adminKey = app.ctx.keys.create({ admin: true }).key;
    const url = await app.listen();
    const post = async (path: string, body: unknown) => (await fetch(path.startsWith('http') ? path : url + path, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    })).json() as Promise<any>;
    const img = await tinyPngBase64();
    const request = { key, controlnet_model: 'canny', width: 64, height: 64, num_inference_steps: 3, strength: 1, prompt: 'a house',
      init_image: img, seed: 3, safety_checker: 'no', instant_response: 'yes' };
    const finished = async (fetchUrl: string) => {
      for (let i = 0; i < 1200; i++) {
        const f = await post(fetchUrl, { key });
        if (f.status !== 'processing') return f;
        await new Promise((res) => setTimeout(res, 50));
      }
      throw new Error('never finished');
    };
    // the first job builds and loads every network and teaches the server its rates
    const warm = await post('/api/v6/images/controlnet', request);
    assert.equal((await finished(warm.fetch_result)).status, 'success');
    assert.notEqual(app.ctx.metrics.eta.rate('step'), PRIOR_SECONDS_PER_UNIT.step, 'the step rate was measured');

    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(await post('/api/v6/images/controlnet', { ...request, seed: 10 + i }));
    const asked = performance.now();
    const [answers, details] = await Promise.all([
      Promise.all(jobs.map((j) => post(j.fetch_result, { key }))),
      post('/api/v1/enterprise/system_details', { key: adminKey }),
    ]);
    const real = await Promise.all(jobs.map(async (j) => {
      assert.equal((await finished(j.fetch_result)).status, 'success');
      return (performance.now() - asked) / 1000;
    }));
    const errors = answers.map((a, i) => {
      assert.equal(a.status, 'processing', JSON.stringify(a));
      return Math.abs(a.eta - real[i]!) / real[i]!;
    });
    const table = answers.map((a, i) => `${a.eta}:${real[i]!.toFixed(2)}`).join(' ');
    t.diagnostic(`eta:real ${table}; relative errors ${errors.map((e) => e.toFixed(3)).join(' ')}; queue_time ${details.queue_time}`);
    assert.ok(real[2]! > real[0]! + 3, `the last job waited for the others (${table})`);
    for (const e of errors) assert.ok(e <= 0.25, `eta:real ${table}`);
    // system_details' queue_time: until every job queued or running now is done (whole seconds)
    assert.ok(Math.abs(details.queue_time - real[2]!) <= 0.25 * real[2]! + 0.5, `queue_time ${details.queue_time} for ${real[2]!.toFixed(2)} s`);
    learned = app.ctx.metrics.eta.rate('step');
  } finally {
    await app.close();
  }

  // the rates survive a restart: a new server on the same DATA_DIR answers with them, not with the priors
  const again = await createApp(cfg, {});
  try {
    assert.ok(Math.abs(again.ctx.metrics.eta.rate('step') - learned) < 1e-9 * learned, `${again.ctx.metrics.eta.rate('step')} vs ${learned}`);
    assert.ok(again.ctx.metrics.eta.measured('load', 'unet'));
    assert.ok(!again.ctx.metrics.eta.measured('upscale'), 'a phase never run here is not measured');
  } finally {
    await again.close();
  }
});

test('a job running in another process: a fetch there answers the runner\'s eta (split mode; the pool does the same through Redis)', async (t) => {
  // rates as test 1 left them in the DATA_DIR database; the runner (a) has the engine, the other server (b) none
  const engineTestDelays = { build: 300, load: 200, encode: 300, step: 100_000, decode: 150_000 };
  const cfg = loadConfig({}, { dataDir, port: 0, host: '127.0.0.1', engineThreads: 1, waitWindowMs: 0, rateLimitPerMinute: 10_000, engineTestDelays, logLevel: 'silent' });
  const runner = await createApp(cfg, { engine: engineFactory(cfg) });
  const other = await createApp(cfg, {});
  try {
    assert.equal(other.worker, undefined, 'the other server runs no jobs');
    const key = other.ctx.keys.create().key;
    const url = await other.listen();
    const img = await tinyPngBase64();
    const job = await (await fetch(`${url}/api/v6/images/controlnet`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key, controlnet_model: 'canny', width: 64, height: 64, num_inference_steps: 4, strength: 1, prompt: 'a barn',
        init_image: img, seed: 5, safety_checker: 'no', instant_response: 'yes' }) })).json() as any;
    const fetchJob = async () => (await fetch(job.fetch_result, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) })).json() as Promise<any>;
    // wait until the runner is in the denoising loop and has written its eta with its progress
    let answer: any, at = 0, record: Awaited<ReturnType<typeof other.ctx.queue.getJob>>;
    for (let i = 0; ; i++) {
      record = await other.ctx.queue.getJob(job.id);
      if (record?.status === 'running' && record.eta && record.step >= 1) {
        at = performance.now();
        answer = await fetchJob();
        break;
      }
      assert.ok(i < 2000, 'the job never ran');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(other.ctx.metrics.eta.remaining(job.id), undefined, 'the other server has no plan of its own for it');
    const fromRunner = Math.max(0.1, record!.eta!.seconds - (Date.now() - record!.eta!.at) / 1000);
    assert.ok(Math.abs(answer.eta - fromRunner) <= 0.3, `answered ${answer.eta}, the runner's eta run down ${fromRunner.toFixed(2)}`);
    for (;;) {
      const f = await fetchJob();
      if (f.status === 'success') break;
      assert.equal(f.status, 'processing');
      await new Promise((r) => setTimeout(r, 50));
    }
    const real = (performance.now() - at) / 1000;
    t.diagnostic(`eta ${answer.eta} s, really ${real.toFixed(2)} s`);
    assert.ok(Math.abs(answer.eta - real) <= 0.25 * real + 0.2, `eta ${answer.eta} vs ${real.toFixed(2)} s`);
  } finally {
    await other.close();
    await runner.close();
  }
});
