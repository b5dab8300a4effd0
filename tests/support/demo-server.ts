// A real server on loopback over the tiny demo models, with its engine thread, for browser and stream tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config.ts';
import { createApp, type App } from '../../src/api/app.ts';
import { createDemoModels } from '../../src/engine/models/demo.ts';
import { engineFactory } from '../../src/worker/engine-factory.ts';
import type { ControlNetType } from '../../src/engine/pipeline/types.ts';

export interface DemoServer {
  app: App;
  url: string;
  key: string;
  dataDir: string;
  close(): Promise<void>;
}

/** Starts createApp on 127.0.0.1:0 with the demo base model "tiny-demo" and the given ControlNet types installed. */
export async function startDemoServer(opts: { types: ControlNetType[]; config?: Partial<Config> }): Promise<DemoServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cn-demo-'));
  await createDemoModels(join(dataDir, 'models'), { baseId: 'tiny-demo', types: opts.types });
  const cfg = loadConfig({ LOG_LEVEL: 'silent' }, { dataDir, port: 0, host: '127.0.0.1', engineThreads: 1, rateLimitPerMinute: 10_000,
    linkSecret: 'fixed', ...opts.config });
  const app = await createApp(cfg, { engine: engineFactory(cfg), logger: pino({ level: 'silent' }) });
  const key = app.ctx.keys.create().key;
  const url = await app.listen();
  return {
    app, url, key, dataDir,
    async close() {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
