// Server settings, read once from the environment (every setting has a safe default for one machine).
import { join, resolve } from 'node:path';

export interface Config {
  dataDir: string;
  modelsDir: string;
  host: string;
  port: number;
  /** Public base URL used in links (output, fetch_result); defaults to http://host:port. */
  publicUrl?: string;
  /** How long a generate request waits for its job before answering "processing" (ms). */
  waitWindowMs: number;
  /** Hosts (names or CIDR ranges) that the image/webhook client may reach even if private. */
  allowPrivateHosts: string[];
  fetchTimeoutMs: number;
  maxInputBytes: number;
  maxInputPixels: number;
  /** Secret that signs temporary output links; unset: one is generated once and kept in DATA_DIR/link-secret
   *  (so that links survive restarts and a separate worker process signs with the same secret). */
  linkSecret?: string;
  tempLinkTtlMs: number;
  webhookSecret?: string;
  webhookMaxAttempts: number;
  webhookBaseDelayMs: number;
  /** Requests per minute per key, and queued (not finished) requests per key. */
  rateLimitPerMinute: number;
  maxQueuedPerKey: number;
  /** Global queue capacity: beyond it, 503. */
  maxQueueDepth: number;
  bootstrapKey?: string;
  defaultModelId?: string;
  hfEndpoint: string;
  engineProvider?: string;
  /** ONNX Runtime intra-op threads (0: one per core). */
  engineThreads?: number;
  logLevel: string;
  /** Job lease (ms): a job whose worker stopped renewing it for this long runs again elsewhere. */
  leaseMs: number;
  /** Redis URL of the pool (unset: one machine, SQLite queue). */
  redisUrl?: string;
  /** This server's id in the pool (default: a name derived from the host and DATA_DIR, stable across restarts). */
  serverId?: string;
  /** Pool heartbeat period (ms); a server silent for 3 periods is marked lost. */
  heartbeatMs: number;
  /** S3-compatible output store for a pool (all five S3_* settings; unset: outputs stay on the server that ran the job). */
  s3?: S3Settings;
}

export interface S3Settings {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

const S3_VARS = ['S3_ENDPOINT', 'S3_BUCKET', 'S3_REGION', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY'] as const;

/** All five S3_* settings, or none (a partial set is an error naming the missing ones). */
function s3Settings(env: NodeJS.ProcessEnv): S3Settings | undefined {
  const set = S3_VARS.filter((v) => env[v]);
  if (set.length === 0) return undefined;
  const missing = S3_VARS.filter((v) => !env[v]);
  if (missing.length) throw new Error(`S3 output store: ${missing.join(', ')} must be set too (or unset all S3_* settings)`);
  return { endpoint: env.S3_ENDPOINT!.replace(/\/+$/, ''), bucket: env.S3_BUCKET!, region: env.S3_REGION!,
    accessKeyId: env.S3_ACCESS_KEY_ID!, secretAccessKey: env.S3_SECRET_ACCESS_KEY! };
}

function num(v: string | undefined, d: number): number {
  if (v === undefined || v === '') return d;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`setting must be a number, got "${v}"`);
  return n;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const dataDir = resolve(overrides.dataDir ?? env.DATA_DIR ?? './data');
  const cfg: Config = {
    dataDir,
    modelsDir: resolve(env.MODELS_DIR ?? join(dataDir, 'models')),
    host: env.HOST ?? '127.0.0.1',
    port: num(env.PORT, 8080),
    publicUrl: env.PUBLIC_URL || undefined,
    waitWindowMs: num(env.WAIT_WINDOW_MS, 10_000),
    allowPrivateHosts: (env.ALLOW_PRIVATE_HOSTS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    fetchTimeoutMs: num(env.FETCH_TIMEOUT_MS, 15_000),
    maxInputBytes: num(env.MAX_INPUT_BYTES, 20 * 1024 * 1024),
    maxInputPixels: num(env.MAX_INPUT_PIXELS, 40_000_000),
    linkSecret: env.LINK_SECRET || undefined,
    tempLinkTtlMs: num(env.TEMP_LINK_TTL_MS, 24 * 3600 * 1000),
    webhookSecret: env.WEBHOOK_SECRET || undefined,
    webhookMaxAttempts: num(env.WEBHOOK_MAX_ATTEMPTS, 6),
    webhookBaseDelayMs: num(env.WEBHOOK_BASE_DELAY_MS, 2000),
    rateLimitPerMinute: num(env.RATE_LIMIT_PER_MINUTE, 60),
    maxQueuedPerKey: num(env.MAX_QUEUED_PER_KEY, 20),
    maxQueueDepth: num(env.MAX_QUEUE_DEPTH, 1000),
    bootstrapKey: env.CONTROLNET_API_KEY || undefined,
    defaultModelId: env.DEFAULT_MODEL_ID || undefined,
    hfEndpoint: (env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, ''),
    engineProvider: env.ENGINE_PROVIDER || undefined,
    // One core fewer than the machine: ONNX Runtime's spinning intra-op threads on every core starve the HTTP thread
    // (measured: 12-30 ms added before a job starts instead of ~3.5 ms on 2 cores).
    engineThreads: env.ENGINE_THREADS ? num(env.ENGINE_THREADS, 0) : 0, // 0: one per core (ONNX Runtime's choice)
    logLevel: env.LOG_LEVEL ?? 'info',
    leaseMs: num(env.LEASE_MS, 30_000),
    redisUrl: env.REDIS_URL || undefined,
    serverId: env.SERVER_ID || undefined,
    heartbeatMs: num(env.HEARTBEAT_MS, 2000),
    s3: s3Settings(env),
  };
  return { ...cfg, ...overrides, dataDir };
}
