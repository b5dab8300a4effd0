// Messages between the engine host (the API process's main thread) and the engine worker thread.
import type { GenerateOptions, GenerateResult, HintRequest, PhaseEvent, ProgressEvent, WorkPlan } from '../pipeline/types.ts';
import type { TestDelays } from '../pipeline/phases.ts';
import type { EngineErrorCode } from '../errors.ts';

/** The engine's settings, built once from config.ts (validated there) and passed down; the engine reads no environment. */
export interface EngineConfig {
  dataDir: string;
  /** The models folder (MODELS_DIR); default DATA_DIR/models. */
  modelsDir?: string;
  /** Images above this many pixels decode their latents in tiles (VAE_TILE_ABOVE_PIXELS; default 768×768). */
  vaeTileAbovePixels?: number;
  /** cpu (default), cuda, tensorrt, webgpu: an unavailable provider fails at start. */
  provider?: string;
  /** ONNX Runtime intra-op threads; 0 = one per core. */
  threads?: number;
  /** The most resident memory (RSS, MB) the process should hold: least recently used idle networks are released
   *  to stay under it. Default: 75% of the machine's (or container's) memory. */
  memoryBudgetMB?: number;
  /** Idle ONNX Runtime threads spin (faster on a dedicated machine, starves other threads on a small one). */
  allowSpinning?: boolean;
  /** ENGINE_PRECISION: fp16 or fp32; unset: fp16 on GPU providers, fp32 on cpu (onnx/precision.ts). */
  precision?: string;
  /** ONNX Runtime's CPU memory arena (default off; ENGINE_CPU_MEM_ARENA=1 turns it on). */
  cpuMemArena?: boolean;
  /** Tests only: milliseconds slept per unit of each phase (a slowed engine for eta tests). */
  testDelays?: TestDelays;
  /** tomesd's use_rand (its default, true): random destination tokens, seeded from the request's seed. */
  tomeUseRand?: boolean;
}

export type ToWorker =
  | { type: 'generate'; id: number; opts: GenerateOptions }
  | { type: 'hint'; id: number; req: HintRequest }
  | { type: 'cancel'; id: number }
  | { type: 'stats'; id: number };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'fatal'; message: string }
  | { type: 'progress'; id: number; progress: ProgressEvent }
  | { type: 'plan'; id: number; plan: WorkPlan }
  | { type: 'phase'; id: number; phase: PhaseEvent }
  | { type: 'result'; id: number; result: GenerateResult }
  | { type: 'hints'; id: number; images: Uint8Array[] }
  | { type: 'stats'; id: number; stats: EngineStats }
  | { type: 'error'; id: number; error: { code: EngineErrorCode; message: string; field?: string } };

export interface EngineStats {
  provider: string;
  precision?: string;
  /** Loaded sessions and the resident MB each was measured to add (load, first run). */
  loaded: { key: string; mb: number; loadMB: number; runMB: number | null }[];
  memoryBudgetMB: number;
  /** The process's resident memory now (MB). */
  rssMB: number;
  /** Sessions released to stay under the budget since start. */
  evictions: number;
}
