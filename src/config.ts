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
  /** The most resident memory (MB) the process should hold; idle networks are evicted to stay under it.
   *  Unset: 75% of the machine's (or container's) memory. */
  engineMemoryBudgetMB?: number;
  logLevel: string;
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
    engineMemoryBudgetMB: env.ENGINE_MEMORY_BUDGET_MB ? num(env.ENGINE_MEMORY_BUDGET_MB, 0) : undefined,
    logLevel: env.LOG_LEVEL ?? 'info',
  };
  return { ...cfg, ...overrides, dataDir };
}
