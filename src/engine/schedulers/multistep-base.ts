// Shared state of the exponential-integrator solvers (DPM-Solver multistep/singlestep, UniPC, DEIS): they
// keep a float32 sigma table, work with alpha_t = 1/sqrt(sigma^2+1), sigma_t = sigma*alpha_t and
// lambda = log(alpha_t) - log(sigma_t), take unscaled inputs and add noise as alpha_t x + sigma_t noise.
import { SigmaTableScheduler } from './base.ts';
import type { SchedulerConfig, StepOptions } from './types.ts';
import {
  f, interpIndex, karrasSigmas, logF32Array, npArange, npLinspace, roundHalfEven, sigmaToT, thresholdSample,
} from './common.ts';

export interface AlphaSigma {
  alpha: number;
  sigma: number;
  lambda: number;
}

/** Where the extra final sigma comes from when Karras sigmas are on. */
export type KarrasLast = 'train_min' | 'karras_min' | 'karras_min_always';

export abstract class MultistepScheduler extends SigmaTableScheduler {
  readonly initNoiseSigma = 1;
  /** The converted model outputs of the last solver_order steps, oldest first (null before they exist). */
  protected modelOutputs: (Float32Array | null)[] = [];
  /** Steps taken since set_timesteps, up to solver_order: the warm-up of the multistep orders. */
  protected lowerOrderNums = 0;

  constructor(config: SchedulerConfig) {
    super(config);
    for (const key of ['use_exponential_sigmas', 'use_beta_sigmas', 'use_lu_lambdas', 'use_flow_sigmas', 'use_dynamic_shifting']) {
      if (config[key]) throw new Error(`${key} is not supported`);
    }
  }

  /** Empties the model-output history (solver_order slots) and restarts the warm-up, as set_timesteps does. */
  protected resetHistory(): void {
    this.modelOutputs = new Array(this.config.solver_order as number).fill(null);
    this.lowerOrderNums = 0;
  }

  /**
   * The order of a multistep update at step i (DPM-Solver multistep, DEIS): first order, then one higher
   * each step up to solver_order; with lower_order_final on fewer than 15 steps the last two steps drop to
   * first and second order, and `firstAtEnd` makes the last step first order in any case.
   */
  protected multistepOrder(i: number, firstAtEnd: boolean): number {
    const len = this.timesteps.length;
    const order = this.config.solver_order as number;
    const short = Boolean(this.config.lower_order_final) && len < 15;
    if (order === 1 || this.lowerOrderNums < 1 || (i === len - 1 && (firstAtEnd || short))) return 1;
    if (order === 2 || this.lowerOrderNums < 2 || (i === len - 2 && short)) return 2;
    return 3;
  }

  /** Counts a finished step toward the warm-up (lower_order_nums). */
  protected warmUp(): void {
    if (this.lowerOrderNums < (this.config.solver_order as number)) this.lowerOrderNums++;
  }

  /** Shifts the history by one and appends the newest converted model output. */
  protected pushModelOutput(converted: Float32Array): void {
    const n = this.modelOutputs.length;
    for (let k = 0; k < n - 1; k++) this.modelOutputs[k] = this.modelOutputs[k + 1]!;
    this.modelOutputs[n - 1] = converted;
  }

  /** The newest `count` model outputs, newest first: [m0, m1, ...]. */
  protected latestOutputs(count: number): Float32Array[] {
    const n = this.modelOutputs.length;
    return Array.from({ length: count }, (_, k) => this.modelOutputs[n - 1 - k]!);
  }

  /** _sigma_to_alpha_sigma_t plus lambda, as float32 tensor math. */
  alphaSigma(sigma: number): AlphaSigma {
    const alpha = f(1 / f(Math.sqrt(f(f(sigma * sigma) + 1))));
    const s = f(sigma * alpha);
    return { alpha, sigma: s, lambda: f(f(Math.log(alpha)) - f(Math.log(s))) };
  }

  /** alphaSigma at table indices i + 1, i, i - 1, ... (`count` of them): the step's target t, then s0, s1, ... */
  protected states(i: number, count: number): AlphaSigma[] {
    return Array.from({ length: count }, (_, k) => this.alphaSigma(this.sigmaTable[i + 1 - k]!));
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const { alpha, sigma } = this.alphaSigma(this.sigmaTable[this.noiseIndex(timestep)]!);
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
