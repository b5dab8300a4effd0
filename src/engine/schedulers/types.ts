// The scheduler interface the pipeline drives, shaped like diffusers' SchedulerMixin.
import type { TorchGenerator } from '../random/torch-generator.ts';
import type { SchedulerName } from '../pipeline/types.ts';

/** A diffusers scheduler_config.json object (snake_case keys, as stored). */
export type SchedulerConfig = Record<string, unknown>;

export interface StepOptions {
  /** The request's generator: stochastic schedulers draw their noise from it, as diffusers does. */
  generator?: TorchGenerator;
  /** DDIM's eta (0 = deterministic); other classes ignore it. */
  eta?: number;
  /** Samples in the batch (the tensors are batch-major); only dynamic thresholding needs it. Default 1. */
  batchSize?: number;
}

export interface Scheduler {
  readonly name: SchedulerName;
  /** The resolved config: every key of the class's __init__, as from_config would set it. */
  readonly config: Readonly<SchedulerConfig>;
  /** Model evaluations per entry of `timesteps` is 1; `order` is what img2img multiplies t_start by. */
  readonly order: number;
  /** The timesteps the model is called with, in order (after setTimesteps). */
  readonly timesteps: number[];
  /** Noise levels where the class has them (float32 values), else undefined. */
  readonly sigmas: number[] | undefined;
  readonly initNoiseSigma: number;
  setTimesteps(numInferenceSteps: number): void;
  /** diffusers' set_begin_index: the step index the first step() / addNoise() call starts at. */
  setBeginIndex(index: number): void;
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array;
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts?: StepOptions): Float32Array;
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array;
}
