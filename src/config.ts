// Server settings: one zod schema over the environment, checked once at start (a bad value names its variable and
// rule), then passed down as a typed object. Nothing else in src/ reads process.env (cli/ builds the env it passes).
import { join, resolve } from 'node:path';
import { z } from 'zod';

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
  /** ONNX Runtime execution provider of every engine network and annotator: cpu, cuda, tensorrt, webgpu. */
  engineProvider?: string;
  /** ONNX Runtime intra-op threads (0: one per core). */
  engineThreads?: number;
  /** Idle ONNX Runtime threads spin (ENGINE_ALLOW_SPINNING=1): faster on a dedicated machine, starves others on a small one. */
  engineAllowSpinning: boolean;
  /** ENGINE_PRECISION: fp16 or fp32 graphs; unset: fp16 on GPU providers, fp32 on cpu. */
  enginePrecision?: 'fp16' | 'fp32';
  /** Images above this many pixels decode their latents in tiles (VAE_TILE_ABOVE_PIXELS). */
  vaeTileAbovePixels: number;
  /** The most resident memory (MB) the process should hold; idle networks are evicted to stay under it.
   *  Unset: 75% of the machine's (or container's) memory. */
  engineMemoryBudgetMB?: number;
  /** ONNX Runtime's CPU memory arena (ENGINE_CPU_MEM_ARENA=1 turns it on; default off: bench/unet-step.ts measured
   * 540 MB less peak RSS at the same step time at SD 1.5 size). */
  engineCpuMemArena: boolean;
  /** Tests only (ENGINE_TEST_DELAYS, JSON: ms per unit by phase): a slowed engine for the eta tests. */
  engineTestDelays?: Record<string, number>;
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
  if (missing.length) throw new ConfigError(`S3 output store: ${missing.join(', ')} must be set too (or unset all S3_* settings)`);
  return { endpoint: env.S3_ENDPOINT!.replace(/\/+$/, ''), bucket: env.S3_BUCKET!, region: env.S3_REGION!,
    accessKeyId: env.S3_ACCESS_KEY_ID!, secretAccessKey: env.S3_SECRET_ACCESS_KEY! };
}

const optionalText = z.string().optional().transform((v) => (v === undefined || v === '' ? undefined : v));
/** A number setting: empty or unset takes the default. */
const number = (d: number, rule: z.ZodNumber = z.number()) =>
  z.string().optional().transform((v, ctx) => {
    if (v === undefined || v === '') return d;
    const n = Number(v);
    const r = Number.isFinite(n) ? rule.safeParse(n) : undefined;
    if (!r?.success) {
      ctx.addIssue({ code: 'custom', message: `must be a number${r ? ` (${r.error.issues[0]!.message})` : ''}, got "${v}"` });
      return z.NEVER;
    }
    return n;
  });
const flag = z.enum(['', '0', '1', 'true', 'false']).optional().transform((v) => v === '1' || v === 'true');

/** Every environment variable the server reads, with its type, default and rule (README "Settings" lists them). */
const envSchema = z.object({
  DATA_DIR: optionalText,
  MODELS_DIR: optionalText,
  HOST: z.string().default('127.0.0.1'),
  PORT: number(8080, z.number().int().min(0).max(65535)),
  PUBLIC_URL: optionalText,
  WAIT_WINDOW_MS: number(10_000, z.number().min(0)),
  ALLOW_PRIVATE_HOSTS: z.string().default('').transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean)),
  FETCH_TIMEOUT_MS: number(15_000, z.number().positive()),
  MAX_INPUT_BYTES: number(20 * 1024 * 1024, z.number().positive()),
  MAX_INPUT_PIXELS: number(40_000_000, z.number().positive()),
  LINK_SECRET: optionalText,
  TEMP_LINK_TTL_MS: number(24 * 3600 * 1000, z.number().positive()),
  WEBHOOK_SECRET: optionalText,
  WEBHOOK_MAX_ATTEMPTS: number(6, z.number().int().min(1)),
  WEBHOOK_BASE_DELAY_MS: number(2000, z.number().min(0)),
  RATE_LIMIT_PER_MINUTE: number(60, z.number().min(0)),
  MAX_QUEUED_PER_KEY: number(20, z.number().int().min(0)),
  MAX_QUEUE_DEPTH: number(1000, z.number().int().min(0)),
  CONTROLNET_API_KEY: optionalText,
  DEFAULT_MODEL_ID: optionalText,
  HF_ENDPOINT: optionalText,
  ENGINE_PROVIDER: z.enum(['', 'cpu', 'cuda', 'tensorrt', 'webgpu']).optional().transform((v) => v || undefined),
  // 0: one per core (ONNX Runtime's choice)
  ENGINE_THREADS: number(0, z.number().int().min(0)),
  ENGINE_ALLOW_SPINNING: flag,
  // unset: fp16 on GPU providers, fp32 on cpu (engine/onnx/precision.ts)
  ENGINE_PRECISION: z.enum(['', 'fp16', 'fp32']).optional().transform((v) => v || undefined),
  // unset: 75% of the machine's (or container's) memory (engine/pipeline/memory.ts)
  ENGINE_MEMORY_BUDGET_MB: z.string().optional().transform((v, ctx) => {
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) {
      ctx.addIssue({ code: 'custom', message: `must be a positive number of MB, got "${v}"` });
      return z.NEVER;
    }
    return n;
  }),
  ENGINE_CPU_MEM_ARENA: z.enum(['', '0', '1']).optional(),
  ENGINE_TEST_DELAYS: z.string().optional().transform((v, ctx) => {
    if (v === undefined || v === '') return undefined;
    try {
      return JSON.parse(v) as Record<string, number>;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be JSON (ms per unit by phase)' });
      return z.NEVER;
    }
  }),
  VAE_TILE_ABOVE_PIXELS: number(768 * 768, z.number().int().min(0)),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // the pool (README "Several servers")
  LEASE_MS: number(30_000, z.number().int().min(100)),
  REDIS_URL: optionalText.refine((v) => v === undefined || /^rediss?:\/\//.test(v), { message: 'must be a redis:// or rediss:// URL' }),
  SERVER_ID: optionalText.refine((v) => v === undefined || /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(v), { message: 'must be letters, digits, . _ - (at most 64)' }),
  HEARTBEAT_MS: number(2000, z.number().int().min(50)),
});

/** Thrown at start-up for a bad setting; the message names the variable and the rule. */
export class ConfigError extends Error {}

/** The settings from `env` (checked once against the schema), with `overrides` (tests, CLI flags) applied last. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; '));
  }
  const e = parsed.data;
  const dataDir = resolve(overrides.dataDir ?? e.DATA_DIR ?? './data');
  const cfg: Config = {
    dataDir,
    modelsDir: resolve(e.MODELS_DIR ?? join(dataDir, 'models')),
    host: e.HOST,
    port: e.PORT,
    publicUrl: e.PUBLIC_URL,
    waitWindowMs: e.WAIT_WINDOW_MS,
    allowPrivateHosts: e.ALLOW_PRIVATE_HOSTS,
    fetchTimeoutMs: e.FETCH_TIMEOUT_MS,
    maxInputBytes: e.MAX_INPUT_BYTES,
    maxInputPixels: e.MAX_INPUT_PIXELS,
    linkSecret: e.LINK_SECRET,
    tempLinkTtlMs: e.TEMP_LINK_TTL_MS,
    webhookSecret: e.WEBHOOK_SECRET,
    webhookMaxAttempts: e.WEBHOOK_MAX_ATTEMPTS,
    webhookBaseDelayMs: e.WEBHOOK_BASE_DELAY_MS,
    rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
    maxQueuedPerKey: e.MAX_QUEUED_PER_KEY,
    maxQueueDepth: e.MAX_QUEUE_DEPTH,
    bootstrapKey: e.CONTROLNET_API_KEY,
    defaultModelId: e.DEFAULT_MODEL_ID,
    hfEndpoint: (e.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, ''),
    engineProvider: e.ENGINE_PROVIDER,
    engineThreads: e.ENGINE_THREADS,
    engineAllowSpinning: e.ENGINE_ALLOW_SPINNING,
    enginePrecision: e.ENGINE_PRECISION,
    engineMemoryBudgetMB: e.ENGINE_MEMORY_BUDGET_MB,
    engineCpuMemArena: e.ENGINE_CPU_MEM_ARENA === '1',
    engineTestDelays: e.ENGINE_TEST_DELAYS,
    vaeTileAbovePixels: e.VAE_TILE_ABOVE_PIXELS,
    logLevel: e.LOG_LEVEL,
    leaseMs: e.LEASE_MS,
    redisUrl: e.REDIS_URL,
    serverId: e.SERVER_ID,
    heartbeatMs: e.HEARTBEAT_MS,
    s3: s3Settings(env),
  };
  return { ...cfg, ...overrides, dataDir };
}
