// A real server on loopback with a fresh DATA_DIR, for API tests.
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config.ts';
import { createApp, type App, type AppOptions } from '../../src/api/app.ts';

export interface TestApp {
  app: App;
  url: string;
  dataDir: string;
  key: string;
  adminKey: string;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/** Placeholder model folders (base + canny, depth ControlNets) so the installed-model check passes, for tests that
 *  run no engine: they exercise HTTP, validation and queueing only. */
export function fakeInstalledBase(modelsDir: string, id: string): void {
  mkdirSync(join(modelsDir, 'base', id), { recursive: true });
  writeFileSync(join(modelsDir, 'base', id, 'model_index.json'), '{}');
  for (const t of ['canny', 'depth']) {
    mkdirSync(join(modelsDir, 'controlnet', t), { recursive: true });
    writeFileSync(join(modelsDir, 'controlnet', t, 'config.json'), '{}');
  }
}

export async function startTestApp(opts: { config?: Partial<Config>; app?: AppOptions; dataDir?: string; baseModel?: string | null } = {}): Promise<TestApp> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'cn-api-'));
  const config = loadConfig({ LOG_LEVEL: 'silent' }, { dataDir, port: 0, host: '127.0.0.1', waitWindowMs: 200, rateLimitPerMinute: 10_000, ...opts.config });
  if (opts.baseModel !== null) fakeInstalledBase(config.modelsDir, opts.baseModel ?? 'sd-test');
  const app = await createApp(config, { logger: pino({ level: 'silent' }), ...opts.app });
  const key = app.ctx.keys.create().key;
  const adminKey = app.ctx.keys.create({ admin: true }).key;
  const url = await app.listen();
  return {
    app, url, dataDir, key, adminKey,
    async post(path, body, headers = {}) {
      const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body) });
      const text = await res.text();
      let parsed: unknown = text;
      try { parsed = JSON.parse(text); } catch { /* not JSON */ }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async close() {
      await app.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A 64x64 PNG as base64. */
export async function tinyPngBase64(w = 64, h = 64): Promise<string> {
  const sharp = (await import('sharp')).default;
  const buf = await sharp({ create: { width: w, height: h, channels: 3, background: { r: 200, g: 30, b: 90 } } }).png().toBuffer();
  return buf.toString('base64');
}
