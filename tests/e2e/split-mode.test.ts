// Split mode on one machine (`serve --no-worker` + `controlnet worker` processes on one DATA_DIR), the three measured
// defects of the queue without leases, each with real processes:
//   D3: with no fault at all, each webhook was delivered twice (both processes polled the webhooks table while a POST
//       was in flight);
//   D2: starting a second worker re-queued the job running in the first (it ran twice, its webhook went out again);
//   D1: kill -9 of the worker running a job left it "running" for ever; a live worker must take it back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { startWebhookReceiver } from '../support/webhook-receiver.ts';

const KEY = 'split-mode-key-0123456789abcdef';

test('split mode: one webhook per job (D3), a new worker leaves running jobs alone (D2), a killed worker\'s job finishes (D1)', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-split-lease-'));
  const { createDemoModels } = await import('../../src/engine/models/demo.ts');
  await createDemoModels(join(dir, 'models'), { baseId: 'tiny-demo', types: ['canny'] });
  const receiver = await startWebhookReceiver(1500); // answers late: the POST stays in flight while others poll
  const { hooks, url: webhook } = receiver;
  const env = { ...process.env, LOG_LEVEL: 'info', ENGINE_THREADS: '1', WAIT_WINDOW_MS: '0', CONTROLNET_API_KEY: KEY, LEASE_MS: '2000',
    ALLOW_PRIVATE_HOSTS: '127.0.0.1' };
  const children: ChildProcess[] = [];
  const spawnCli = (args: string[]) => {
    const c = spawn(process.execPath, ['bin/controlnet.js', ...args, '--data-dir', dir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(c);
    return c;
  };
  const db = () => new Database(join(dir, 'controlnet.db'), { readonly: true, fileMustExist: true });
  const row = (id: number) => {
    const d = db();
    try {
      return d.prepare('SELECT status, worker FROM jobs WHERE id = ?').get(id) as { status: string; worker: string | null };
    } finally {
      d.close();
    }
  };
  const until = async (what: string, ms: number, fn: () => boolean) => {
    const end = Date.now() + ms;
    while (!fn()) {
      if (Date.now() > end) throw new Error(`timed out: ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    const server = spawnCli(['serve', '--no-worker', '--port', '0']);
    let out = '';
    server.stdout!.on('data', (c) => (out += c));
    await until('server start', 60_000, () => /"url":"http/.test(out));
    const url = /"url":"(http[^"]+)"/.exec(out)![1]!;
    const w1 = spawnCli(['worker']);
    const img = (await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toBuffer()).toString('base64');
    const submit = async (track: string, long: boolean) => {
      const res = await fetch(`${url}/api/v6/images/controlnet`, { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: KEY, controlnet_model: 'canny', init_image: img, webhook, track_id: track,
          ...(long ? { width: 256, height: 256, num_inference_steps: 50, strength: 1 } : { width: 64, height: 64, num_inference_steps: 2 }) }) });
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      return body.id as number;
    };

    // D3: one quick job, no fault.
    const a = await submit('a', false);
    await until('job a', 90_000, () => row(a).status === 'success');
    await until('webhook a', 10_000, () => (hooks.get('a') ?? 0) >= 1);
    await new Promise((r) => setTimeout(r, 2500)); // time for a second delivery, if any
    assert.equal(hooks.get('a'), 1, 'D3: the webhook was delivered once');

    // D2: a second worker starts while the first runs a long job.
    const b = await submit('b', true);
    await until('job b running', 30_000, () => row(b).status === 'running');
    const w2 = spawnCli(['worker']);
    await until('job b', 120_000, () => row(b).status === 'success');
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(hooks.get('b'), 1, 'D2: the running job was not run again (one webhook)');

    // D1: kill -9 the worker running a long job; the other takes it back after its lease and finishes it.
    const c = await submit('c', true);
    await until('job c running', 30_000, () => row(c).status === 'running');
    const runner = row(c).worker!;
    const victim = [w1, w2].find((w) => runner.includes(String(w.pid)))!;
    assert.ok(victim, `the worker running job c (${runner}) is one of ours`);
    victim.kill('SIGKILL');
    await until('job c finished by the surviving worker', 60_000, () => row(c).status === 'success');
    assert.notEqual(row(c).worker, runner);
    await until('webhook c', 10_000, () => (hooks.get('c') ?? 0) >= 1);
  } finally {
    for (const ch of children) {
      if (ch.exitCode === null && ch.signalCode === null) {
        ch.kill('SIGKILL');
        await new Promise((r) => ch.once('exit', r));
      }
    }
    receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
