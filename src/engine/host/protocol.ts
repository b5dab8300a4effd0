// Messages between the engine host (the API process's main thread) and the engine worker thread.
import type { GenerateOptions, GenerateResult, HintRequest, ProgressEvent } from '../pipeline/types.ts';
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
  /** Upper bound for networks kept loaded (MB); least recently used sessions are released beyond it. */
  memoryBudgetMB?: number;
  /** Idle ONNX Runtime threads spin (faster on a dedicated machine, starves other threads on a small one). */
  allowSpinning?: boolean;
  /** ENGINE_PRECISION: fp16 or fp32; unset: fp16 on GPU providers, fp32 on cpu (onnx/precision.ts). */
  precision?: string;
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
  | { type: 'result'; id: number; result: GenerateResult }
  | { type: 'hints'; id: number; images: Uint8Array[] }
  | { type: 'stats'; id: number; stats: EngineStats }
  | { type: 'error'; id: number; error: { code: EngineErrorCode; message: string; field?: string } };

export interface EngineStats {
  provider: string;
  precision?: string;
  loaded: { key: string; mb: number }[];
  memoryBudgetMB: number;
}
