// Wires one machine's server: SQLite store and queue, output folder, models folder, keys, webhooks, metrics, the
// engine (in its worker thread) and the job loop, behind the fastify server.
import { registerServerPath } from '../client-message.ts';
import { ApiError } from './errors.ts';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import type { Engine } from '../engine/pipeline/types.ts';
import { cacheDir } from '../engine/store.ts';
import { openDb, type Db } from '../jobs/db.ts';
import { SqliteQueue } from '../jobs/sqlite-queue.ts';
import { LocalStore } from '../storage/local.ts';
import { ModelsFolder } from '../storage/models-folder.ts';
import { ModelDownloader } from '../storage/model-download.ts';
import type { Resolver } from '../inputs/safe-fetch.ts';
import { WebhookSender } from '../worker/webhooks.ts';
import { JobWorker } from '../worker/worker.ts';
import type { AppContext } from './context.ts';
import { KeyStore } from './keys.ts';
import { Metrics } from './metrics.ts';
import { RateLimiter } from './rate-limit.ts';
import { buildServer } from './server.ts';

export interface AppOptions {
  /** Makes the engine this process runs jobs with; omit to run no jobs here (a separate `controlnet worker` does). */
  engine?: () => Promise<Engine & { stats?: () => Promise<unknown> }>;
  /** Injectable clock (temporary-link expiry tests). */
  now?: () => number;
  /** Injectable DNS resolver for outbound requests (SSRF tests). */
  resolver?: Resolver;
  logger?: pino.Logger;
}

export interface App {
  ctx: AppContext;
  server: FastifyInstance;
  worker?: JobWorker;
  /** Listens on config.host:config.port (port 0: any free port); returns the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

async function dirBytes(p: string): Promise<number> {
  const s = await stat(p).catch(() => undefined);
  if (!s) return 0;
  if (!s.isDirectory()) return s.size;
  let n = 0;
  for (const e of await readdir(p)) n += await dirBytes(join(p, e));
  return n;
}

/** The configured link secret, else the one kept in DATA_DIR (created on first use, readable by the owner only). */
export function linkSecret(config: Config): string {
  if (config.linkSecret) return config.linkSecret;
  const path = join(config.dataDir, 'link-secret');
  try {
    writeFileSync(path, randomBytes(32).toString('hex'), { flag: 'wx', mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return readFileSync(path, 'utf8').trim();
}

/** Shared by the server and the `worker` command: the store, queue and output folder of DATA_DIR. */
export function openStores(config: Config, now: () => number = Date.now): { db: Db; queue: SqliteQueue; store: LocalStore; models: ModelsFolder } {
  const db = openDb(config.dataDir);
  return { db, queue: new SqliteQueue(db, now), store: new LocalStore(config.dataDir, linkSecret(config), now), models: new ModelsFolder(config.modelsDir) };
}

export function fetchOptions(config: Config, resolver?: Resolver) {
  return { allow: config.allowPrivateHosts, timeoutMs: config.fetchTimeoutMs, resolver };
}

export async function createApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const now = opts.now ?? Date.now;
  await mkdir(config.dataDir, { recursive: true });
  // Messages to clients name model files relative to the models folder and never show a server path.
  registerServerPath(config.dataDir);
  registerServerPath(config.modelsDir, { relative: true });
  const log = opts.logger ?? pino({ level: config.logLevel });
  const { db, queue, store, models } = openStores(config, now);
  await store.init();
  const keys = new KeyStore(db);
  if (config.bootstrapKey) keys.add(config.bootstrapKey, { admin: true, label: 'CONTROLNET_API_KEY' });
  const fetchOpts = fetchOptions(config, opts.resolver);
  const webhooks = new WebhookSender(db, { secret: config.webhookSecret, maxAttempts: config.webhookMaxAttempts,
    baseDelayMs: config.webhookBaseDelayMs, fetch: fetchOpts, now, log: (msg, extra) => log.warn(extra ?? {}, msg) });
  const metrics = new Metrics(() => queue.depth());
  let engine: (Engine & { stats?: () => Promise<unknown> }) | undefined;
  let worker: JobWorker | undefined;

  const startWorker = async () => {
    if (!opts.engine) return;
    engine = await opts.engine();
    worker = new JobWorker({ queue, engine, store, webhooks, metrics, log,
      limits: { maxBytes: config.maxInputBytes, maxPixels: config.maxInputPixels, fetch: fetchOpts }, tempLinkTtlMs: config.tempLinkTtlMs });
    worker.start();
  };

  const ctx: AppContext = {
    config, db, queue, keys, store, models, webhooks, metrics, log, startedAt: now(),
    limiter: new RateLimiter(config.rateLimitPerMinute, now),
    downloader: new ModelDownloader(models, { hfEndpoint: config.hfEndpoint, fetch: fetchOpts }),
    resolver: opts.resolver,
    fetch: fetchOpts,
    hint: opts.engine ? async (req) => {
      if (!engine) throw new ApiError(503, 'the engine is restarting; try again');
      return engine.hint(req);
    } : undefined,
    defaultModelId: () => config.defaultModelId ?? models.firstInstalled('base'),
    engineStats: async () => (engine?.stats ? engine.stats() : null),
    restart: async () => {
      await worker?.stop();
      await engine?.close();
      engine = undefined;
      worker = undefined;
      await startWorker();
      app.worker = worker;
    },
    clearCache: async () => {
      const dir = cacheDir(config.dataDir);
      const removedBytes = await dirBytes(dir);
      await rm(dir, { recursive: true, force: true });
      return { removedBytes };
    },
  };

  if (opts.engine) {
    const r = queue.recoverRunning();
    if (r.requeued || r.failed) log.info(r, 'recovered jobs left running by a previous process');
  }
  await startWorker();
  webhooks.start();
  const sweeper = setInterval(() => void store.sweep(config.tempLinkTtlMs), 3600_000);
  sweeper.unref();

  const server = buildServer(ctx);
  const app: App = {
    ctx, server, worker,
    async listen() {
      await server.listen({ host: config.host, port: config.port });
      const addr = server.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.port;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      return `http://${host}:${port}`;
    },
    async close() {
      clearInterval(sweeper);
      webhooks.stop();
      await server.close();
      await worker?.stop(true);
      await engine?.close();
      db.close();
    },
  };
  return app;
}
