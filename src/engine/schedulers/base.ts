// The state the scheduler families share. TrainedScheduler: the resolved config, alphas_cumprod from the
// training noise schedule (with diffusers' zero-terminal-SNR rescale), the timesteps and the begin index
// img2img sets. SigmaTableScheduler adds the float32 sigma table and the step index that the k-diffusion
// (sigma-base.ts) and exponential-integrator (multistep-base.ts) families walk.
import type { SchedulerName } from '../pipeline/types.ts';
import type { Scheduler, SchedulerConfig, StepOptions } from './types.ts';
import { alphasCumprod, indexForTimestep, rescaleZeroTerminalSnr, trainBetas, trainSigmas } from './common.ts';

export abstract class TrainedScheduler implements Scheduler {
  abstract readonly name: SchedulerName;
  readonly order: number = 1;
  readonly config: SchedulerConfig;
  readonly alphasCumprod: Float32Array;
  abstract readonly initNoiseSigma: number;
  abstract readonly sigmas: number[] | undefined;
  timesteps: number[] = [];
  numInferenceSteps = 0;
  protected beginIndex: number | null = null;

  /**
   * `zeroSnrFloor`: after the zero-terminal-SNR rescale, set the last alphas_cumprod to 2^-24 as the
   * sigma-based diffusers classes do (so the largest sigma stays finite); the alpha-based ones keep 0.
   */
  constructor(config: SchedulerConfig, zeroSnrFloor: boolean) {
    this.config = config;
    let betas = trainBetas(config);
    if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    this.alphasCumprod = alphasCumprod(betas);
    if (zeroSnrFloor && config.rescale_betas_zero_snr) this.alphasCumprod[this.alphasCumprod.length - 1] = 2 ** -24;
  }

  abstract setTimesteps(numInferenceSteps: number): void;
  abstract step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts?: StepOptions): Float32Array;
  abstract addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array;

  setBeginIndex(index: number): void {
    this.beginIndex = index;
  }

  /** No input scaling unless the family has it (the sigma-based one does). */
  scaleModelInput(sample: Float32Array, _timestep?: number): Float32Array {
    return sample;
  }

  /** The training timesteps, descending (what diffusers holds before set_timesteps). */
  protected trainTimesteps(): number[] {
    const T = this.config.num_train_timesteps as number;
    return Array.from({ length: T }, (_, i) => T - 1 - i);
  }

  /** The guard diffusers' step() has before set_timesteps. */
  protected requireTimesteps(): void {
    if (!this.numInferenceSteps) throw new Error("Number of inference steps is 'None', you need to run 'set_timesteps' after creating the scheduler");
  }
}

export abstract class SigmaTableScheduler extends TrainedScheduler {
  /** Training sigmas ((1-a)/a)^0.5 as float32, ascending in t. */
  readonly trainSigmas: Float32Array;
  sigmaTable: Float32Array = new Float32Array(0);
  protected stepIndex: number | null = null;

  constructor(config: SchedulerConfig) {
    super(config, true);
    this.trainSigmas = trainSigmas(this.alphasCumprod);
  }

  get sigmas(): number[] {
    return Array.from(this.sigmaTable);
  }

  protected resetIndex(): void {
    this.stepIndex = null;
    this.beginIndex = null;
  }

  protected initStepIndex(timestep: number): number {
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? indexForTimestep(this.timesteps, timestep);
    return this.stepIndex;
  }

  /** The table index add_noise uses: the timestep's own before img2img sets a begin index, else the current step. */
  protected noiseIndex(timestep: number): number {
    return this.beginIndex === null ? indexForTimestep(this.timesteps, timestep) : (this.stepIndex ?? this.beginIndex);
  }
}
