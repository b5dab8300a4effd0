// A `controlnet serve` process for the pool tests, as one machine of a pool would run it: its own DATA_DIR, the
// pool's Redis and S3 settings, a short lease and heartbeat; resolves once it listens (its URL from the log line).
// Its models folder holds the random tiny models (base "tiny-demo" and one ControlNet per type), the test fixtures
// the quick start's first start installed before it installed the trained shapes demo.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createDemoModels } from '../../src/engine/models/demo.ts';

export interface PoolServer { id: string; dir: string; child: ChildProcess; url: string; log: string }

/** `into`: the list the server joins as soon as it is spawned (so that a failed start elsewhere still stops it). */
export async function startPoolServer(id: string, dir: string, env: Record<string, string>, args: string[] = [], into?: PoolServer[]): Promise<PoolServer> {
  if (!existsSync(join(dir, 'models', 'base'))) await createDemoModels(join(dir, 'models'), { baseId: 'tiny-demo' });
  const child = spawn(process.execPath, ['bin/controlnet.js', 'serve', ...args, '--data-dir', dir, '--port', '0'],
    { env: { ...process.env, LOG_LEVEL: 'info', ENGINE_THREADS: '1', WAIT_WINDOW_MS: '0', SERVER_ID: id, LEASE_MS: '3000',
      HEARTBEAT_MS: '1000', RATE_LIMIT_PER_MINUTE: '1000', MAX_QUEUED_PER_KEY: '100', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const s: PoolServer = { id, dir, child, url: '', log: '' };
  into?.push(s);
  child.stderr!.on('data', (c) => (s.log += c));
  s.url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id} did not start: ${s.log}`)), 90_000);
    child.stdout!.on('data', (c) => {
      s.log += c;
      const u = /"url":"(http[^"]+)"/.exec(s.log);
      if (u) { clearTimeout(timer); resolve(u[1]!); }
    });
    child.once('exit', (code) => reject(new Error(`${id} exited ${code}: ${s.log}`)));
  });
  return s;
}

/** Kills what still runs (SIGKILL) and removes the DATA_DIRs. */
export async function stopPoolServers(servers: PoolServer[]): Promise<void> {
  for (const s of servers) {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      const exited = new Promise((r) => s.child.once('exit', r));
      s.child.kill('SIGKILL');
      await exited;
    }
    rmSync(s.dir, { recursive: true, force: true });
  }
}

export async function post(url: string, body: Record<string, unknown>): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}
