// Joining the pool (REDIS_URL): one Redis connection for this server, the BullMQ queue, the Redis webhook outbox,
// pool-wide keys and rate limits, the server registry (heartbeats) and the output store every server reads (S3).
// Without S3 the pool still shares keys, limits, fetch and webhooks, but every job runs on the server that accepted
// it (its outputs and links stay valid there): balancing needs a store every server can read.
import { Redis } from 'ioredis';
import type pino from 'pino';
import type { Config } from '../config.ts';
import { MODEL_KINDS } from '../engine/store.ts';
import { RedisQueue } from '../jobs/redis-queue.ts';
import type { KeyStore } from '../api/keys.ts';
import type { ModelsFolder } from '../storage/models-folder.ts';
import { LocalStore } from '../storage/local.ts';
import { S3Store } from '../storage/s3.ts';
import { RedisOutbox } from '../worker/redis-outbox.ts';
import { localMissing, type Backends } from '../main/wire.ts';
import { firstMissing, NEED_KINDS } from '../jobs/model-set.ts';
import { PoolKeys } from './pool-keys.ts';
import { PoolGate } from './pool-gate.ts';
import { ServerRegistry, type ServerRecord } from './registry.ts';

export const POOL_PREFIX = 'cn';

export interface JoinOptions {
  /** This server's id (jobs pinned to it, its registry entry). */
  serverId: string;
  /** The id of the DATA_DIR's server (a `worker` process claims its pinned jobs too). */
  homeId: string;
  localKeys: KeyStore;
  models: ModelsFolder;
  now: () => number;
  log: pino.Logger;
  /** The link secret (local outputs without S3). */
  secret: string;
}

/** Removes a key (by its SHA-256) from the pool's shared key set: it stops working on every server at once. */
export async function withdrawPoolKey(redisUrl: string, hash: string): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2, lazyConnect: true });
  try {
    await redis.connect();
    await redis.hdel(`${POOL_PREFIX}:keys`, hash);
  } finally {
    redis.disconnect();
  }
}

export async function joinPool(config: Config, o: JoinOptions): Promise<Backends> {
  const redis = new Redis(config.redisUrl!, { maxRetriesPerRequest: null, lazyConnect: true });
  redis.on('error', (e: Error) => o.log.warn({ err: e.message }, 'redis connection error'));
  await redis.connect();
  const shared = Boolean(config.s3);
  if (!shared) o.log.warn('REDIS_URL without S3_*: jobs run on the server that accepted them (no shared output store)');
  const queue = new RedisQueue(redis, { prefix: POOL_PREFIX, lockMs: config.leaseMs, now: o.now, pinAllTo: shared ? undefined : o.homeId });
  const keys = new PoolKeys(redis, POOL_PREFIX, o.localKeys);
  await keys.publishLocal();
  const registry = new ServerRegistry(redis, POOL_PREFIX, config.heartbeatMs);
  const store = config.s3 ? new S3Store(config.s3, { now: o.now, ttlMs: config.tempLinkTtlMs }) : new LocalStore(config.dataDir, o.secret, o.now);
  const installedHere = () => Object.fromEntries(MODEL_KINDS.map((k) => [k, o.models.installedIds(k)]));
  let last: ServerRecord | undefined;
  // The accept path asks for several models per request: one registry read per heartbeat period is enough.
  let cached: { at: number; list: ServerRecord[] } | undefined;
  const liveServers = async () => {
    if (!cached || Date.now() - cached.at > Math.min(1000, config.heartbeatMs)) cached = { at: Date.now(), list: await registry.list() };
    return cached.list;
  };
  return {
    queue, store, keys,
    outbox: new RedisOutbox(redis, POOL_PREFIX),
    gate: new PoolGate(redis, POOL_PREFIX, config.rateLimitPerMinute, () => keys.flush()),
    // The request's models together on one live server that runs jobs (routing takes the whole set into account).
    missingModel: async (base, needs) => {
      const here = localMissing(o.models, base, needs);
      // Without S3 jobs run here; a server that runs jobs and has them all needs no registry read (and a late
      // heartbeat of its own cannot refuse the request).
      if (!shared || (last?.worker && !here)) return here;
      const able = (await liveServers()).filter((s) => s.alive && s.worker && (s.installed.base ?? []).includes(base));
      if (!able.length) return { kind: 'base', id: base };
      // None has them all: name what the closest one lacks.
      const lacks = able.map((s) => firstMissing(s.installed, needs));
      if (lacks.some((x) => x === undefined)) return undefined;
      const count = (s: ServerRecord) => NEED_KINDS.reduce((n, k) => n + needs[k].filter((id) => !(s.installed[k] ?? []).includes(id)).length, 0);
      const best = able.map((s, i) => ({ n: count(s), i })).sort((a, b) => a.n - b.n)[0]!;
      return lacks[best.i];
    },
    servers: async (self) => {
      last = { ...self(), installed: installedHere() };
      await registry.beat(last);
      return (await registry.list()).map(({ installed: _i, left: _l, ...info }) => info);
    },
    workers: async () => Math.max(1, (await liveServers()).filter((s) => s.alive && s.worker).length),
    claimModels: (loaded) => ({ installed: o.models.installedIds('base'), loaded,
      extras: { vae: o.models.installedIds('vae'), lora: o.models.installedIds('lora'), controlnet: o.models.installedIds('controlnet') } }),
    claimServer: o.homeId,
    async close() {
      if (last) await registry.leave(last).catch(() => undefined);
      await queue.close();
      redis.disconnect();
    },
  };
}
