// ONNX Runtime sessions: provider choice (fails loudly, never falls back) and a compiled-model cache keyed by
// everything that determines the graph, so a second start loads instead of rebuilding.
import ort from 'onnxruntime-node';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { GraphBuilder } from './graph.ts';
import { writeModel, type WriteOptions } from './serialize.ts';
import type { Fp32Island, Precision } from './precision.ts';

/** Bump when any graph builder changes what it emits: old cache entries are then ignored. */
export const BUILDER_VERSION = 4;

export const PROVIDERS = ['cpu', 'cuda', 'tensorrt', 'webgpu'] as const;
export type Provider = (typeof PROVIDERS)[number];

export interface RuntimeOptions {
  provider: Provider;
  /** intra-op threads; 0 lets ONNX Runtime choose (one per physical core). */
  threads?: number;
  cacheDir: string;
  /**
   * Let idle pool threads spin (ONNX Runtime's default). Off by default: a spinning pool starves the HTTP thread on
   * small machines. A dedicated worker machine may turn it on (ENGINE_ALLOW_SPINNING=1); bench/unet-step.ts measures both.
   */
  allowSpinning?: boolean;
  /** The networks' weights and activations (ENGINE_PRECISION); default fp32. Part of each compiled graph's key. */
  precision?: Precision;
  /** Extra float32 islands of the float16 graphs built for this provider (precision.ts defaultFp32Islands: `conv` on
   *  webgpu); default none. Part of each compiled graph's key. */
  fp32Islands?: readonly Fp32Island[];
  /**
   * ONNX Runtime's CPU memory arena (default on). Off, activations are allocated per run and freed after it, so
   * (with MALLOC_MMAP_THRESHOLD_ set, see README) a loaded session holds only its weights between jobs;
   * bench/memory-arena.ts measures the speed and memory of both.
   */
  cpuMemArena?: boolean;
}

export function parseProvider(s: string | undefined): Provider {
  const p = (s ?? 'cpu').toLowerCase();
  if (!(PROVIDERS as readonly string[]).includes(p)) throw new Error(`ENGINE_PROVIDER must be one of ${PROVIDERS.join(', ')} (got "${s}")`);
  return p as Provider;
}

/** Checks that the provider can really run here by loading a one-node graph on it alone. */
export async function assertProviderAvailable(provider: Provider, cacheDir: string): Promise<void> {
  const dir = join(cacheDir, 'probe');
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'identity.onnx');
  if (!existsSync(file)) {
    const g = new GraphBuilder('probe');
    g.output(g.op('Identity', [g.input('x', 'float32', [1])]), 'y', 'float32', [1]);
    await writeModel(g, file);
  }
  const supported = ort.listSupportedBackends().map((b) => b.name);
  if (provider !== 'cpu' && !supported.includes(provider)) {
    throw new Error(`execution provider "${provider}" is not in this onnxruntime-node build (has: ${supported.join(', ')})`);
  }
  try {
    const s = await ort.InferenceSession.create(file, { executionProviders: [provider] });
    await s.release();
  } catch (e) {
    throw new Error(`execution provider "${provider}" is not available on this machine: ${(e as Error).message}. ` +
      (provider === 'cuda' || provider === 'tensorrt' ? 'Install onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12 (see README).' : ''));
  }
}

export function sessionOptions(rt: RuntimeOptions): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [rt.provider],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: rt.threads ?? 0,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableCpuMemArena: rt.cpuMemArena ?? true,
    enableMemPattern: true,
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: rt.allowSpinning ? '1' : '0' }, inter_op: { allow_spinning: rt.allowSpinning ? '1' : '0' } } },
  };
}

/** A stable hash of any JSON-able description. */
export function keyHash(key: unknown): string {
  return createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 32);
}

/** What a build produces: the graph, plus optional facts about it kept beside the cache entry (e.g. LoRA slots). */
export type Built = GraphBuilder | { graph: GraphBuilder; info?: unknown };

/**
 * Returns the path of the compiled .onnx for `key`, building it with `build` on a miss, and the build's `info`
 * (saved beside it, so a cache hit needs no rebuild to know it). The key must contain everything the graph
 * depends on (config, weight fingerprints, options).
 */
export async function compiledModel(
  cacheDir: string, key: unknown, build: () => Built | Promise<Built>, opts: WriteOptions = {},
): Promise<{ path: string; built: boolean; info: unknown }> {
  const hash = keyHash({ v: BUILDER_VERSION, key });
  const dir = join(cacheDir, 'onnx', hash);
  const path = join(dir, 'model.onnx');
  const done = join(dir, 'complete.json');
  if (existsSync(done)) return { path, built: false, info: JSON.parse(await readFile(done, 'utf8')).info };
  // Build in a private folder and rename it into place, so concurrent builders of one key never see half a model.
  const tmp = `${dir}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  await mkdir(tmp, { recursive: true });
  try {
    const result = await build();
    const { graph, info } = result instanceof GraphBuilder ? { graph: result, info: undefined } : result;
    await writeModel(graph, join(tmp, 'model.onnx'), opts);
    await writeFile(join(tmp, 'complete.json'), JSON.stringify({ key, info, builtAt: new Date().toISOString() }));
    try {
      await rename(tmp, dir);
    } catch (e) {
      if (!existsSync(done)) throw e; // another builder won the race with an identical model
    }
    return { path, built: true, info };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** True when this binding can keep a provider's session outputs on the device (ORT IO binding: WebGPU only). */
export function keepsOutputsOnDevice(provider: Provider): boolean {
  return provider === 'webgpu';
}

export interface SessionCreateOptions {
  /** Outputs stay on the device (preferredOutputLocation 'gpu-buffer') where the provider allows (onnx/device.ts). */
  outputsOnDevice?: boolean;
}

/** Whether compiledModel(cacheDir, key, …) would be a cache hit. */
export function isCompiled(cacheDir: string, key: unknown): boolean {
  return existsSync(join(cacheDir, 'onnx', keyHash({ v: BUILDER_VERSION, key }), 'complete.json'));
}

export async function createSession(path: string, rt: RuntimeOptions, opts: SessionCreateOptions = {}): Promise<ort.InferenceSession> {
  const device = opts.outputsOnDevice && keepsOutputsOnDevice(rt.provider) ? { preferredOutputLocation: 'gpu-buffer' as const } : {};
  return ort.InferenceSession.create(path, { ...sessionOptions(rt), ...device });
}

export { ort };
