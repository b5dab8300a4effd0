// Shared state of the exponential-integrator solvers (DPM-Solver multistep/singlestep, UniPC, DEIS): they
// keep a float32 sigma table, work with alpha_t = 1/sqrt(sigma^2+1), sigma_t = sigma*alpha_t and
// lambda = log(alpha_t) - log(sigma_t), take unscaled inputs and add noise as alpha_t x + sigma_t noise.
import type { SchedulerName } from '../pipeline/types.ts';
import type { Scheduler, SchedulerConfig, StepOptions } from './types.ts';
import {
  alphasCumprod, f, indexForTimestep, interpIndex, karrasSigmas, logF32Array, npArange, npLinspace,
  rescaleZeroTerminalSnr, roundHalfEven, sigmaToT, thresholdSample, trainBetas, trainSigmas,
} from './common.ts';

export interface AlphaSigma {
  alpha: number;
  sigma: number;
  lambda: number;
}

/** Where the extra final sigma comes from when Karras sigmas are on. */
export type KarrasLast = 'train_min' | 'karras_min' | 'karras_min_always';

export abstract class MultistepScheduler implements Scheduler {
  abstract readonly name: SchedulerName;
  readonly order: number = 1;
  readonly config: SchedulerConfig;
  readonly alphasCumprod: Float32Array;
  readonly trainSigmas: Float32Array;
  readonly initNoiseSigma = 1;
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
    for (const key of ['use_exponential_sigmas', 'use_beta_sigmas', 'use_lu_lambdas', 'use_flow_sigmas', 'use_dynamic_shifting']) {
      if (config[key]) throw new Error(`${key} is not supported`);
    }
  }

  get sigmas(): number[] {
    return Array.from(this.sigmaTable);
  }

  abstract setTimesteps(numInferenceSteps: number): void;
  abstract step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts?: StepOptions): Float32Array;

  setBeginIndex(index: number): void {
    this.beginIndex = index;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  protected initStepIndex(timestep: number): number {
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? indexForTimestep(this.timesteps, timestep);
    return this.stepIndex;
  }

  protected resetIndex(): void {
    this.stepIndex = null;
    this.beginIndex = null;
  }

  /** _sigma_to_alpha_sigma_t plus lambda, as float32 tensor math. */
  alphaSigma(sigma: number): AlphaSigma {
    const alpha = f(1 / f(Math.sqrt(f(f(sigma * sigma) + 1))));
    const s = f(sigma * alpha);
    return { alpha, sigma: s, lambda: f(f(Math.log(alpha)) - f(Math.log(s))) };
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const index = this.beginIndex === null ? indexForTimestep(this.timesteps, timestep) : (this.stepIndex ?? this.beginIndex);
    const { alpha, sigma } = this.alphaSigma(this.sigmaTable[index]!);
    return original.map((x, i) => f(f(alpha * x) + f(sigma * noise[i]!)));
  }

  /** Integer timesteps by spacing over n+1 points, dropping the last (these solvers end at sigma_min/0). */
  protected spacedTimesteps(n: number, spacing: string = this.config.timestep_spacing as string): number[] {
    const T = this.config.num_train_timesteps as number;
    switch (spacing) {
      case 'linspace': return npLinspace(0, T - 1, n + 1).map(roundHalfEven).reverse().slice(0, -1);
      case 'leading': {
        const ratio = Math.floor(T / (n + 1));
        return npArange(0, n + 1, 1).map((i) => i * ratio + (this.config.steps_offset as number)).reverse().slice(0, -1);
      }
      case 'trailing': return npArange(T, 0, -T / n).map((v) => roundHalfEven(v) - 1);
      default: throw new Error(`${spacing} is not supported. Please make sure to choose one of 'linspace', 'leading' or 'trailing'.`);
    }
  }

  /**
   * Timesteps and the float32 sigma table (n + 1 entries). With Karras sigmas the timesteps become the
   * rounded fractional timesteps of those sigmas; `karrasLast` says which final sigma each class appends.
   */
  protected buildSchedule(n: number, spaced: number[], karrasLast: KarrasLast, roundKarras = true): void {
    let timesteps = spaced;
    let sigmas: number[];
    const finalType = this.config.final_sigmas_type ?? 'sigma_min';
    let last: number;
    if (finalType !== 'sigma_min' && finalType !== 'zero') {
      throw new Error(`\`final_sigmas_type\` must be one of 'zero', or 'sigma_min', but got ${String(finalType)}`);
    }
    if (this.config.use_karras_sigmas) {
      const logSigmas = logF32Array(this.trainSigmas);
      sigmas = karrasSigmas([...this.trainSigmas].reverse(), n, this.config.sigma_min as number | null | undefined, this.config.sigma_max as number | null | undefined);
      timesteps = sigmas.map((s) => sigmaToT(s, logSigmas));
      if (roundKarras) timesteps = timesteps.map(roundHalfEven);
      if (karrasLast === 'karras_min_always') last = sigmas[sigmas.length - 1]!;
      else if (finalType === 'zero') last = 0;
      else last = karrasLast === 'karras_min' ? sigmas[sigmas.length - 1]! : this.trainSigmas[0]!;
    } else {
      sigmas = timesteps.map((t) => interpIndex(t, this.trainSigmas));
      last = finalType === 'zero' ? 0 : this.trainSigmas[0]!;
    }
    this.sigmaTable = Float32Array.from([...sigmas, last]);
    this.timesteps = timesteps;
    this.numInferenceSteps = timesteps.length;
    this.resetIndex();
  }

  protected threshold(x0: Float32Array, opts: StepOptions): Float32Array {
    return this.config.thresholding
      ? thresholdSample(x0, opts.batchSize ?? 1, this.config.dynamic_thresholding_ratio as number, this.config.sample_max_value as number)
      : x0;
  }

  /** The data prediction x0 at table index i (dpmsolver++ / UniPC predict_x0 / DEIS convert_model_output). */
  protected toX0(modelOutput: Float32Array, sample: Float32Array, i: number, opts: StepOptions): Float32Array {
    const { alpha, sigma } = this.alphaSigma(this.sigmaTable[i]!);
    let x0: Float32Array;
    switch (this.config.prediction_type) {
      case 'epsilon': x0 = sample.map((x, k) => f(f(x - f(sigma * modelOutput[k]!)) / alpha)); break;
      case 'sample': x0 = modelOutput; break;
      case 'v_prediction': x0 = sample.map((x, k) => f(f(alpha * x) - f(sigma * modelOutput[k]!))); break;
      default: throw new Error(`prediction_type given as ${String(this.config.prediction_type)} must be one of \`epsilon\`, \`sample\`, or \`v_prediction\``);
    }
    return this.threshold(x0, opts);
  }

  /** The noise prediction at table index i (dpmsolver / UniPC predict_x0=false). */
  protected toEps(modelOutput: Float32Array, sample: Float32Array, i: number, opts: StepOptions): Float32Array {
    const { alpha, sigma } = this.alphaSigma(this.sigmaTable[i]!);
    let eps: Float32Array;
    switch (this.config.prediction_type) {
      case 'epsilon': eps = modelOutput; break;
      case 'sample': eps = sample.map((x, k) => f(f(x - f(alpha * modelOutput[k]!)) / sigma)); break;
      case 'v_prediction': eps = sample.map((x, k) => f(f(alpha * modelOutput[k]!) + f(sigma * x))); break;
      default: throw new Error(`prediction_type given as ${String(this.config.prediction_type)} must be one of \`epsilon\`, \`sample\`, or \`v_prediction\``);
    }
    if (this.config.thresholding) {
      const x0 = this.threshold(sample.map((x, k) => f(f(x - f(sigma * eps[k]!)) / alpha)), opts);
      eps = sample.map((x, k) => f(f(x - f(alpha * x0[k]!)) / sigma));
    }
    return eps;
  }
}

/**
 * Left-to-right sum of coefficient * tensor terms in float32, the way `c0*x + c1*a - c2*b ...` evaluates
 * on torch tensors when every coefficient is a 0-d float32 tensor. Each term is [sign, coef, tensor].
 */
export function combine(terms: [1 | -1, number, Float32Array][]): Float32Array {
  const [s0, c0, x0] = terms[0]!;
  const out = x0.map((v) => f(s0 * f(c0 * v)));
  for (let t = 1; t < terms.length; t++) {
    const [s, c, x] = terms[t]!;
    for (let k = 0; k < out.length; k++) out[k] = f(out[k]! + s * f(c * x[k]!));
  }
  return out;
}

export const sub = (a: Float32Array, b: Float32Array) => a.map((v, k) => f(v - b[k]!));
