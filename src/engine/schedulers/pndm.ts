// PNDMScheduler (Liu et al. 2022): Runge-Kutta warm-up (unless skip_prk_steps) then linear multistep
// (PLMS) on the model's noise predictions.
import { AlphaScheduler } from './alpha-base.ts';
import { BETA_DEFAULTS, f, npArange, npLinspace, roundHalfEven } from './common.ts';
import type { SchedulerConfig } from './types.ts';

export const PNDM_DEFAULTS = {
  ...BETA_DEFAULTS,
  skip_prk_steps: false,
  set_alpha_to_one: false,
  prediction_type: 'epsilon',
  timestep_spacing: 'leading',
  steps_offset: 0,
};

const add = (a: Float32Array, b: Float32Array) => a.map((x, i) => f(x + b[i]!));
const scale = (k: number, a: Float32Array) => a.map((x) => f(f(k) * x));

export class PNDMScheduler extends AlphaScheduler {
  readonly name = 'PNDMScheduler' as const;
  private prkTimesteps: number[] = [];
  private ets: Float32Array[] = [];
  private counter = 0;
  private curModelOutput: Float32Array | null = null;
  private curSample: Float32Array | null = null;

  constructor(config: SchedulerConfig) {
    super(config);
    if (config.prediction_type !== 'epsilon' && config.prediction_type !== 'v_prediction') {
      throw new Error(`prediction_type given as ${String(config.prediction_type)} must be one of \`epsilon\` or \`v_prediction\``);
    }
  }

  setTimesteps(n: number): void {
    this.numInferenceSteps = n;
    const T = this.config.num_train_timesteps as number;
    let base: number[]; // ascending
    switch (this.config.timestep_spacing) {
      case 'linspace': base = npLinspace(0, T - 1, n).map(roundHalfEven); break;
      case 'leading': base = npArange(0, n, 1).map((i) => i * Math.floor(T / n) + (this.config.steps_offset as number)); break;
      case 'trailing': base = npArange(T, 0, -T / n).map(roundHalfEven).reverse().map((t) => t - 1); break;
      default: throw new Error(`${String(this.config.timestep_spacing)} is not supported. Please make sure to choose one of 'linspace', 'leading' or 'trailing'.`);
    }
    let plms: number[];
    if (this.config.skip_prk_steps) {
      this.prkTimesteps = [];
      plms = [...base.slice(0, -1), ...base.slice(-2, -1), ...base.slice(-1)].reverse();
    } else {
      const half = Math.floor(Math.floor(T / n) / 2);
      const prk = base.slice(-4).flatMap((t) => [t, t + half]); // repeat(2) + tile([0, half])
      const rep = prk.slice(0, -1).flatMap((t) => [t, t]).slice(1, -1);
      this.prkTimesteps = rep.reverse();
      plms = base.slice(0, -3).reverse();
    }
    this.timesteps = [...this.prkTimesteps, ...plms];
    this.ets = [];
    this.counter = 0;
    this.curModelOutput = null;
    this.curSample = null;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array {
    this.requireTimesteps();
    if (this.counter < this.prkTimesteps.length && !this.config.skip_prk_steps) return this.stepPrk(modelOutput, t, sample);
    return this.stepPlms(modelOutput, t, sample);
  }

  private stepPrk(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array {
    const T = this.config.num_train_timesteps as number;
    const diff = this.counter % 2 ? 0 : Math.floor(Math.floor(T / this.numInferenceSteps) / 2);
    const prevT = t - diff;
    const timestep = this.prkTimesteps[Math.floor(this.counter / 4) * 4]!;
    const acc = (k: number) => (this.curModelOutput ? add(this.curModelOutput, scale(k, modelOutput)) : scale(k, modelOutput));
    let mo = modelOutput;
    const phase = this.counter % 4;
    if (phase === 0) {
      this.curModelOutput = acc(1 / 6);
      this.ets.push(modelOutput);
      this.curSample = sample;
    } else if (phase === 1 || phase === 2) {
      this.curModelOutput = acc(1 / 3);
    } else {
      mo = acc(1 / 6);
      this.curModelOutput = null;
    }
    const prev = this.prevSample(this.curSample ?? sample, timestep, prevT, mo);
    this.counter++;
    return prev;
  }

  private stepPlms(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array {
    if (!this.config.skip_prk_steps && this.ets.length < 3) {
      throw new Error(`${this.name} can only be run AFTER scheduler has been run in 'prk' mode for at least 12 iterations`);
    }
    const stride = Math.floor((this.config.num_train_timesteps as number) / this.numInferenceSteps);
    let prevT = t - stride;
    let timestep = t;
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3);
      this.ets.push(modelOutput);
    } else {
      prevT = t;
      timestep = t + stride;
    }
    const e = this.ets;
    const n = e.length;
    let mo: Float32Array;
    let x = sample;
    if (n === 1 && this.counter === 0) {
      mo = modelOutput;
      this.curSample = sample;
    } else if (n === 1 && this.counter === 1) {
      mo = modelOutput.map((v, i) => f(f(v + e[0]![i]!) / 2));
      x = this.curSample!;
      this.curSample = null;
    } else if (n === 2) {
      mo = e[1]!.map((v, i) => f(f(f(3 * v) - e[0]![i]!) / 2));
    } else if (n === 3) {
      mo = e[2]!.map((v, i) => f(f(f(f(23 * v) - f(16 * e[1]![i]!)) + f(5 * e[0]![i]!)) / 12));
    } else {
      const k = f(1 / 24);
      mo = e[3]!.map((v, i) => f(k * f(f(f(f(55 * v) - f(59 * e[2]![i]!)) + f(37 * e[1]![i]!)) - f(9 * e[0]![i]!))));
    }
    const prev = this.prevSample(x, timestep, prevT, mo);
    this.counter++;
    return prev;
  }

  /** Formula (9) of the PNDM paper: the pseudo-linear transfer from t to prevT. */
  private prevSample(sample: Float32Array, t: number, prevT: number, modelOutput: Float32Array): Float32Array {
    const a = this.alphasCumprod[t]!;
    const ap = this.alphaProdAt(prevT);
    const b = f(1 - a);
    const bp = f(1 - ap);
    let mo = modelOutput;
    if (this.config.prediction_type === 'v_prediction') {
      const sa = f(Math.sqrt(a));
      const sb = f(Math.sqrt(b));
      mo = modelOutput.map((v, i) => f(f(sa * v) + f(sb * sample[i]!)));
    }
    const sampleCoeff = f(Math.sqrt(f(ap / a)));
    const denom = f(f(a * f(Math.sqrt(bp))) + f(Math.sqrt(f(f(a * b) * ap))));
    const diff = f(ap - a);
    return sample.map((x, i) => f(f(sampleCoeff * x) - f(f(diff * mo[i]!) / denom)));
  }
}
