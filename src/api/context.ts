// Everything the routes share: one object built by app.ts, so routes stay free of wiring.
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.ts';
import type { JobQueue } from '../jobs/queue.ts';
import type { OutputStore } from '../storage/store.ts';
import type { PoolDetails } from '../cluster/details.ts';
import type { ModelsFolder } from '../storage/models-folder.ts';
import type { ModelDownloader } from '../storage/model-download.ts';
import type { WebhookSender } from '../worker/webhooks.ts';
import type { Keys } from './keys.ts';
import type { Metrics } from './metrics.ts';
import type { Gate } from './admission.ts';
import type { JobCounts } from '../jobs/queue.ts';
import type { ModelNeeds, NeedKind } from '../jobs/model-set.ts';
import type { SafeFetchOptions, Resolver } from '../inputs/safe-fetch.ts';
import type { HintRequest } from '../engine/pipeline/types.ts';

export interface AppContext {
  config: Config;
  /** This server's id (its name in the pool). */
  serverId: string;
  queue: JobQueue;
  keys: Keys;
  /** Key, rate limit and per-key count of a request that may queue work, at once (one round trip in the pool). */
  gate: Gate;
  /** Queued and running jobs (the capacity check); in the pool at most a second old. */
  queueDepth(): Promise<JobCounts>;
  store: OutputStore;
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
  /** The first of a request's models that no server able to run it has (all on one server), or undefined. */
  missingModel(base: string, needs: ModelNeeds): Promise<{ kind: 'base' | NeedKind; id: string } | undefined>;
  /** Workers sharing the queue: the pool's live servers that run jobs (at most a second old), 1 on one machine. */
  workers(): Promise<number>;
  /** The servers of the pool (one machine: this one) and the queue depth per model, for system_details. */
  poolDetails(): Promise<PoolDetails>;
}
