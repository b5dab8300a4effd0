// The one composition root: every command that serves or runs jobs (`serve`, `serve --no-worker`, `worker`) and
// the tests build the process here. Backends are chosen from the settings: one machine (SQLite queue and webhook
// outbox in DATA_DIR, local keys and limits, outputs in DATA_DIR/outputs) or the pool (REDIS_URL: BullMQ queues per
// model, Redis outbox, shared keys and limits, heartbeats; S3_* for outputs every server reads).
import { registerServerPath } from '../client-message.ts';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Config } from '../config.ts';
import type { Engine } from '../engine/pipeline/types.ts';
import { cacheDir } from '../engine/store.ts';
import { openDb } from '../jobs/db.ts';
import type { ClaimOptions, JobQueue } from '../jobs/queue.ts';
import { firstMissing, type ModelNeeds, type NeedKind } from '../jobs/model-set.ts';
import { SqliteQueue } from '../jobs/sqlite-queue.ts';
import { SqliteRateStore } from '../jobs/phase-rates.ts';
import { LocalStore } from '../storage/local.ts';
import type { OutputStore } from '../storage/store.ts';
import { ModelsFolder } from '../storage/models-folder.ts';
import { ModelDownloader } from '../storage/model-download.ts';
import type { Resolver } from '../inputs/safe-fetch.ts';
import { WebhookSender, type WebhookOutbox } from '../worker/webhooks.ts';
import { JobWorker } from '../worker/worker.ts';
import { ApiError } from '../api/errors.ts';
import type { AppContext } from '../api/context.ts';
import { KeyStore, type Keys } from '../api/keys.ts';
import { Metrics } from '../api/metrics.ts';
import { RateLimiter } from '../api/rate-limit.ts';
import { LocalGate, type Gate } from '../api/admission.ts';
import { cachedCounts } from '../jobs/cached-counts.ts';
import type { PoolDetails, ServerInfo } from '../cluster/details.ts';
import { LoadedModels } from '../cluster/loaded-models.ts';

export type EngineMaker = () => Promise<Engine & { stats?: () => Promise<unknown> }>;

export interface WireOptions {
  /** Makes the engine this process runs jobs with; omit to run no jobs here (`serve --no-worker`). */
  engine?: EngineMaker;
  /** Injectable clock (temporary-link expiry tests). */
  now?: () => number;
  /** Injectable DNS resolver for outbound requests (SSRF tests). */
  resolver?: Resolver;
  logger?: pino.Logger;
  /** false for the `worker` command (no HTTP): its id is the DATA_DIR's server id plus `-worker-<pid>`. */
  http?: boolean;
}

export interface Wired {
  ctx: AppContext;
  /** The job loop, when this process runs jobs. */
  worker(): JobWorker | undefined;
  /** Graceful stop: stop taking jobs, hand the running one back, leave the pool, close the stores. */
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

/** This server's id: SERVER_ID, else the host name and DATA_DIR's own random id (stable across restarts). */
export function serverId(config: Config): string {
  if (config.serverId) return config.serverId;
  const path = join(config.dataDir, 'server-id');
  try {
    writeFileSync(path, `${hostname()}-${randomBytes(3).toString('hex')}`, { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return readFileSync(path, 'utf8').trim();
}

export function fetchOptions(config: Config, resolver?: Resolver) {
  return { allow: config.allowPrivateHosts, timeoutMs: config.fetchTimeoutMs, resolver };
}

/** The first of a request's models not installed in this models folder (base first), or undefined. */
export function localMissing(models: ModelsFolder, base: string, needs: ModelNeeds): { kind: 'base' | NeedKind; id: string } | undefined {
  if (!models.installed('base', base)) return { kind: 'base', id: base };
  return firstMissing({ vae: models.installedIds('vae'), lora: models.installedIds('lora'), controlnet: models.installedIds('controlnet') }, needs);
}

/** The backends that differ between one machine and the pool. */
export interface Backends {
  queue: JobQueue;
  outbox: WebhookOutbox;
  keys: Keys;
  /** Admission of requests that may queue work: key, rate token and the key's unfinished count at once. */
  gate: Gate;
  store: OutputStore;
  /**
   * The first model of a request that no server able to run it has, with the base model and its ControlNets, LoRAs
   * and VAE together on one server (the pool); undefined when it can run. One machine: the first not installed here.
   */
  missingModel(base: string, needs: ModelNeeds): Promise<{ kind: 'base' | NeedKind; id: string } | undefined>;
  /** Reports this server's state (the pool's heartbeat); returns the pool's servers. */
  servers(self: () => ServerInfo): Promise<ServerInfo[]>;
  /** How many workers share the queue (the live servers that run jobs, in the pool; 1 on one machine): a queued
   * job's eta deals the jobs ahead of it to them. */
  workers(): Promise<number>;
  /** Base models this server may claim jobs for (the pool's routing); undefined on one machine. */
  claimModels?(loaded: string[]): NonNullable<ClaimOptions['models']>;
  /** The server whose pinned jobs this worker runs (pool). */
  claimServer?: string;
  close(): Promise<void>;
}

export async function wire(config: Config, opts: WireOptions = {}): Promise<Wired> {
  const now = opts.now ?? Date.now;
  await mkdir(config.dataDir, { recursive: true });
  // Messages to clients name model files relative to the models folder and never show a server path.
  registerServerPath(config.dataDir);
  registerServerPath(config.modelsDir, { relative: true });
  const log = opts.logger ?? pino({ level: config.logLevel });
  const home = serverId(config);
  const id = opts.http === false ? `${home}-worker-${process.pid}` : home;
  const db = openDb(config.dataDir);
  const models = new ModelsFolder(config.modelsDir);
  const localKeys = new KeyStore(db);
  if (config.bootstrapKey) localKeys.add(config.bootstrapKey, { admin: true, label: 'CONTROLNET_API_KEY' });
  let b: Backends;
  if (config.redisUrl) {
    const { joinPool } = await import('../cluster/pool.ts');
    b = await joinPool(config, { serverId: id, homeId: home, localKeys, models, now, log, secret: linkSecret(config) });

  } else {
    const queue = new SqliteQueue(db, now);
    b = {
      queue, outbox: queue.outbox, keys: localKeys,
      gate: new LocalGate(localKeys, new RateLimiter(config.rateLimitPerMinute, now), (keyId) => queue.pendingForKey(keyId)),
      store: new LocalStore(config.dataDir, linkSecret(config), now),
      missingModel: async (base, needs) => localMissing(models, base, needs),
      servers: async (self) => [self()],
      workers: async () => 1,
      close: async () => queue.close(),
    };
  }
  const { queue, store } = b;
  await store.init();
  const fetchOpts = fetchOptions(config, opts.resolver);
  const webhooks = new WebhookSender(b.outbox, { secret: config.webhookSecret, maxAttempts: config.webhookMaxAttempts,
    baseDelayMs: config.webhookBaseDelayMs, fetch: fetchOpts, now, log: (msg, extra) => log.warn(extra ?? {}, msg) });
  let counts = { queued: 0, running: 0 };
  const metrics = new Metrics(() => counts, new SqliteRateStore(db));
  const countsTimer = setInterval(() => void queue.getJobCounts().then((c) => (counts = c), () => undefined), 2000);
  countsTimer.unref();
  // without an engine here, the rates are learned by a `worker` process on the same DATA_DIR: read them as they change
  const ratesTimer = opts.engine ? undefined : setInterval(() => metrics.eta.reload(), 10_000);
  ratesTimer?.unref();
  const loaded = new LoadedModels();
  const stats = { completed: 0, failed: 0, job: null as number | null, startedAt: now() };
  let engine: Awaited<ReturnType<EngineMaker>> | undefined;
  let worker: JobWorker | undefined;

  const startWorker = async () => {
    if (!opts.engine) return;
    engine = await opts.engine();
    worker = new JobWorker({ queue, engine, store, webhooks, metrics, log, name: id, lockMs: config.leaseMs,
      limits: { maxBytes: config.maxInputBytes, maxPixels: config.maxInputPixels, fetch: fetchOpts }, tempLinkTtlMs: config.tempLinkTtlMs,
      models: b.claimModels ? () => b.claimModels!(loaded.list()) : undefined, server: b.claimServer,
      onBusy: (job, outcome) => {
        stats.job = job?.id ?? null;
        if (job?.request.model_id) loaded.use(job.request.model_id);
        if (outcome === 'success') stats.completed++;
        if (outcome === 'failed') stats.failed++;
      } });
    worker.start();
  };

  const self = (): ServerInfo => ({
    id, alive: true, busy: stats.job !== null, job: stats.job, loaded_models: loaded.list(), installed_models: models.installedIds('base'),
    jobs_completed: stats.completed, jobs_failed: stats.failed, last_seen: now(), started_at: stats.startedAt, worker: Boolean(opts.engine),
  });

  const ctx: AppContext = {
    config, serverId: id, queue, keys: b.keys, gate: b.gate, store,
    // SQLite counts in microseconds; the pool's count is one round trip per queue: at most a second old.
    queueDepth: config.redisUrl ? cachedCounts(() => queue.getJobCounts(), 1000) : () => queue.getJobCounts(), models, webhooks, metrics, log, startedAt: now(),
    downloader: new ModelDownloader(models, { hfEndpoint: config.hfEndpoint, fetch: fetchOpts }),
    resolver: opts.resolver,
    fetch: fetchOpts,
    hint: opts.engine ? async (req) => {
      if (!engine) throw new ApiError(503, 'the engine is restarting; try again');
      return engine.hint(req);
    } : undefined,
    defaultModelId: () => config.defaultModelId ?? models.firstInstalled('base'),
    engineStats: async () => (engine?.stats ? engine.stats() : null),
    missingModel: b.missingModel,
    workers: b.workers,
    poolDetails: async (): Promise<PoolDetails> => ({
      mode: config.redisUrl ? 'redis' : 'single', servers: await b.servers(self), queues: await queue.getJobCountsByModel(),
    }),
    restart: async () => {
      await worker?.stop(true);
      await engine?.close();
      engine = undefined;
      worker = undefined;
      await startWorker();
    },
    clearCache: async () => {
      const dir = cacheDir(config.dataDir);
      const removedBytes = await dirBytes(dir);
      await rm(dir, { recursive: true, force: true });
      return { removedBytes };
    },
  };

  await b.servers(self); // first heartbeat: the pool sees this server before it takes jobs
  await startWorker();
  webhooks.start();
  const heartbeat = setInterval(() => void b.servers(self).catch((e: Error) => log.warn({ err: e.message }, 'heartbeat failed')), config.heartbeatMs);
  heartbeat.unref();
  const sweeper = setInterval(() => void store.sweep(config.tempLinkTtlMs), 3600_000);
  sweeper.unref();

  return {
    ctx,
    worker: () => worker,
    async close() {
      clearInterval(sweeper);
      clearInterval(countsTimer);
      clearInterval(ratesTimer);
      clearInterval(heartbeat);
      await worker?.stop(true);
      await webhooks.stop();
      await engine?.close();
      await b.close();
      db.close();
    },
  };
}
