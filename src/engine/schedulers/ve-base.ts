// What KarrasVe and ScoreSdeVe share: both run a variance-exploding sampler on an SD (variance-preserving)
// model viewed as a VE one, x_ve = x_vp * sqrt(sigma^2 + 1), with sigma limited to the model's trained
// sigma range and each model evaluation at t(sigma), the fractional training timestep of its sigma. A
// step may take several evaluations, so they keep a list of evaluations and walk it.
import type { SchedulerName } from '../pipeline/types.ts';
import { alphasCumprod, f, logF32Array, sigmaToT, trainBetas, trainSigmas } from './common.ts';
import type { Scheduler, SchedulerConfig, StepOptions } from './types.ts';

export function firstIndexOf(timesteps: number[], t: number): number {
  const i = timesteps.indexOf(t);
  if (i < 0) throw new Error(`timestep ${t} is not in the schedule`);
  return i;
}

export abstract class VeOnVpScheduler implements Scheduler {
  abstract readonly name: SchedulerName;
  abstract readonly order: number;
  abstract readonly sigmas: number[];
  abstract readonly initNoiseSigma: number;
  readonly config: SchedulerConfig;
  /** float32 log of the model's training sigmas, for t(sigma). */
  protected readonly logSigmas: Float32Array;
  /** [sigma_min, sigma_max] of the config, limited to the model's trained sigmas. */
  protected readonly sigmaRange: [number, number];
  /** Per model evaluation: [step, flag] (the flag is the class's: KarrasVe's corrector, ScoreSdeVe's predictor). */
  protected evals: [number, boolean][] = [];
  timesteps: number[] = [];
  protected evalIndex: number | null = null;
  protected beginIndex: number | null = null;

  constructor(config: SchedulerConfig) {
    this.config = config;
    const train = trainSigmas(alphasCumprod(trainBetas(config)));
    this.logSigmas = logF32Array(train);
    this.sigmaRange = [Math.max(config.sigma_min as number, train[0]!), Math.min(config.sigma_max as number, train[train.length - 1]!)];
  }

  abstract setTimesteps(numInferenceSteps: number): void;
  abstract step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts?: StepOptions): Float32Array;
  abstract addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array;
  /** The noise level the model sees at evaluation e. */
  protected abstract evalSigma(e: number): number;

  setBeginIndex(index: number): void {
    this.beginIndex = index;
  }

  /** Starts a new list of evaluations (set_timesteps). */
  protected resetEvals(): void {
    this.evals = [];
    this.timesteps = [];
    this.evalIndex = null;
    this.beginIndex = null;
  }

  /** Appends an evaluation of step `step` at noise level sigma. */
  protected pushEval(step: number, flag: boolean, sigma: number): void {
    this.evals.push([step, flag]);
    this.timesteps.push(sigmaToT(sigma, this.logSigmas));
  }

  /**
   * The evaluation a call is at: the begin index, else the first match of the timestep. Timesteps repeat
   * (clipped at the ends, or shared by corrector and predictor), so a fresh run starts at the first match,
   * not diffusers' second.
   */
  protected startEval(timestep: number): number {
    return this.beginIndex ?? firstIndexOf(this.timesteps, timestep);
  }

  protected currentEval(timestep: number): number {
    if (this.evalIndex === null) this.evalIndex = this.startEval(timestep);
    return this.evalIndex;
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const sigma = this.evalSigma(this.currentEval(timestep));
    const d = f(Math.sqrt(sigma * sigma + 1));
    return sample.map((x) => f(x / d));
  }
}
