// Shared state machine of the k-diffusion style schedulers (Euler, Euler ancestral, LMS, Heun, KDPM2,
// KDPM2 ancestral): a float32 sigma table, a step index found from the first timestep (or set by
// setBeginIndex), input scaling by 1/sqrt(sigma^2+1) and add_noise = x + noise*sigma.
import type { SchedulerName } from '../pipeline/types.ts';
import type { Scheduler, SchedulerConfig, StepOptions } from './types.ts';
import {
  alphasCumprod, f, indexForTimestep, interpIndex, karrasSigmas, logF32Array, rescaleZeroTerminalSnr,
  sigmaToT, spacedTimesteps, trainBetas, trainSigmas,
} from './common.ts';

export abstract class SigmaScheduler implements Scheduler {
  abstract readonly name: SchedulerName;
  readonly order: number = 1;
  readonly config: SchedulerConfig;
  readonly alphasCumprod: Float32Array;
  /** Training sigmas ((1-a)/a)^0.5 as float32, ascending in t. */
  readonly trainSigmas: Float32Array;
  timesteps: number[] = [];
  sigmaTable: Float32Array = new Float32Array(0);
  numInferenceSteps = 0;
  protected stepIndex: number | null = null;
  protected beginIndex: number | null = null;

  constructor(config: SchedulerConfig) {
    this.config = config;
    let betas = trainBetas(config);
    if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    this.alphasCumprod = alphasCumprod(betas);
    if (config.rescale_betas_zero_snr) this.alphasCumprod[this.alphasCumprod.length - 1] = 2 ** -24;
    this.trainSigmas = trainSigmas(this.alphasCumprod);
  }

  get sigmas(): number[] {
    return Array.from(this.sigmaTable);
  }

  get initNoiseSigma(): number {
    let max = 0;
    for (const s of this.sigmaTable) max = Math.max(max, s);
    if (this.config.timestep_spacing === 'linspace' || this.config.timestep_spacing === 'trailing') return max;
    return f(Math.sqrt(f(f(max * max) + 1)));
  }

  abstract setTimesteps(numInferenceSteps: number): void;
  abstract step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts?: StepOptions): Float32Array;

  setBeginIndex(index: number): void {
    this.beginIndex = index;
  }

  protected resetIndex(): void {
    this.stepIndex = null;
    this.beginIndex = null;
  }

  protected initStepIndex(timestep: number): number {
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? indexForTimestep(this.timesteps, timestep);
    return this.stepIndex;
  }

  /** The sigma the model input is scaled with (Heun/KDPM2 override it for their second stage). */
  protected inputSigma(index: number): number {
    return this.sigmaTable[index]!;
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const i = this.initStepIndex(timestep);
    const sigma = this.inputSigma(i);
    const d = f(Math.sqrt(f(f(sigma * sigma) + 1)));
    return sample.map((x) => f(x / d));
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const index = this.beginIndex === null ? indexForTimestep(this.timesteps, timestep) : (this.stepIndex ?? this.beginIndex);
    const sigma = this.sigmaTable[index]!;
    return original.map((x, i) => f(x + f(noise[i]! * sigma)));
  }

  /** Timesteps by spacing (float32 like np.float32 arrays) and the interpolated training sigmas (doubles). */
  protected baseSchedule(n: number): { timesteps: number[]; sigmas: number[]; logSigmas: Float32Array } {
    const timesteps = spacedTimesteps(this.config, n, false).map(f);
    const sigmas = timesteps.map((t) => interpIndex(t, this.trainSigmas));
    return { timesteps, sigmas, logSigmas: logF32Array(this.trainSigmas) };
  }

  protected karras(sigmas: number[], n: number, logSigmas: Float32Array): { sigmas: number[]; timesteps: number[] } {
    const ks = karrasSigmas(sigmas, n, this.config.sigma_min as number | null | undefined, this.config.sigma_max as number | null | undefined);
    return { sigmas: ks, timesteps: ks.map((s) => sigmaToT(s, logSigmas)) };
  }

  /** x0 from the model output at noise level sigma (epsilon / v_prediction / sample), in float32 ops. */
  protected predictOriginal(modelOutput: Float32Array, sample: Float32Array, sigma: number): Float32Array {
    const p = this.config.prediction_type;
    if (p === 'epsilon') return sample.map((x, i) => f(x - f(sigma * modelOutput[i]!)));
    if (p === 'v_prediction') {
      const s2 = f(f(sigma * sigma) + 1);
      const c = f(-sigma / f(Math.sqrt(s2)));
      return sample.map((x, i) => f(f(modelOutput[i]! * c) + f(x / s2)));
    }
    if (p === 'sample' || p === 'original_sample') return modelOutput.slice();
    throw new Error(`prediction_type given as ${String(p)} must be one of \`epsilon\`, or \`v_prediction\``);
  }
}

/** Repeat-interleave the middle of a table the way Heun/KDPM2 double their sigmas: [a, b,b, c,c, ..., z]. */
export function interleaveMiddle(values: ArrayLike<number>, keepLast: boolean): number[] {
  const out = [values[0]!];
  const end = keepLast ? values.length - 1 : values.length;
  for (let i = 1; i < end; i++) out.push(values[i]!, values[i]!);
  if (keepLast) out.push(values[values.length - 1]!);
  return out;
}
