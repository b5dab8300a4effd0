// Everything the routes share: one object built by app.ts, so routes stay free of wiring.
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.ts';
import type { Db } from '../jobs/db.ts';
import type { SqliteQueue } from '../jobs/sqlite-queue.ts';
import type { LocalStore } from '../storage/local.ts';
import type { ModelsFolder } from '../storage/models-folder.ts';
import type { ModelDownloader } from '../storage/model-download.ts';
import type { WebhookSender } from '../worker/webhooks.ts';
import type { KeyStore } from './keys.ts';
import type { Metrics } from './metrics.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { SafeFetchOptions, Resolver } from '../inputs/safe-fetch.ts';
import type { HintRequest } from '../engine/pipeline/types.ts';

export interface AppContext {
  config: Config;
  db: Db;
  queue: SqliteQueue;
  keys: KeyStore;
  limiter: RateLimiter;
  store: LocalStore;
  models: ModelsFolder;
  downloader: ModelDownloader;
  webhooks: WebhookSender;
  metrics: Metrics;
  log: FastifyBaseLogger;
  startedAt: number;
  /** The model used when a request names none (config, else the first installed base model). */
  defaultModelId(): string | undefined;
  /** Stats of the engine when this process runs one. */
  engineStats?(): Promise<unknown>;
  /** Restarts the engine and the job loop (enterprise restart_server). */
  restart(): Promise<void>;
  /** Clears the compiled-model cache (enterprise clear_cache). */
  clearCache(): Promise<{ removedBytes: number }>;
  resolver?: Resolver;
  /** The SSRF-safe fetch settings for images given by URL. */
  fetch: SafeFetchOptions;
  /** The hint maps of auto_hint, on this process's engine (absent when it runs none). */
  hint?(req: HintRequest): Promise<Buffer[]>;
}
