// DEISMultistepScheduler (Zhang & Chen 2022), log-rho variant: polynomial extrapolation of the noise
// prediction in log(sigma/alpha), orders 1-3.
import { BETA_DEFAULTS, f } from './common.ts';
import { MultistepScheduler } from './multistep-base.ts';
import type { SchedulerConfig, StepOptions } from './types.ts';

export const DEIS_DEFAULTS = {
  ...BETA_DEFAULTS,
  solver_order: 2,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  algorithm_type: 'deis',
  solver_type: 'logrho',
  lower_order_final: true,
  use_karras_sigmas: false as boolean | null,
  use_exponential_sigmas: false as boolean | null,
  use_beta_sigmas: false as boolean | null,
  use_flow_sigmas: false as boolean | null,
  flow_shift: 1.0,
  timestep_spacing: 'linspace',
  steps_offset: 0,
  use_dynamic_shifting: false,
  time_shift_type: 'exponential',
};

const ln = (x: number) => f(Math.log(x));

export class DEISMultistepScheduler extends MultistepScheduler {
  readonly name = 'DEISMultistepScheduler' as const;
  private modelOutputs: (Float32Array | null)[] = [];
  private lowerOrderNums = 0;

  constructor(config: SchedulerConfig) {
    const c = { ...config };
    if (c.algorithm_type !== 'deis') {
      if (c.algorithm_type === 'dpmsolver' || c.algorithm_type === 'dpmsolver++') c.algorithm_type = 'deis';
      else throw new Error(`${String(c.algorithm_type)} is not implemented for DEISMultistepScheduler`);
    }
    if (c.solver_type !== 'logrho') {
      if (['midpoint', 'heun', 'bh1', 'bh2'].includes(c.solver_type as string)) c.solver_type = 'logrho';
      else throw new Error(`solver type ${String(c.solver_type)} is not implemented for DEISMultistepScheduler`);
    }
    super(c);
  }

  setTimesteps(n: number): void {
    this.buildSchedule(n, this.spacedTimesteps(n), 'karras_min_always');
    this.modelOutputs = new Array(this.config.solver_order as number).fill(null);
    this.lowerOrderNums = 0;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    if (!this.numInferenceSteps) throw new Error("Number of inference steps is 'None', you need to run 'set_timesteps' after creating the scheduler");
    const i = this.initStepIndex(timestep);
    const len = this.timesteps.length;
    const lof = Boolean(this.config.lower_order_final);
    const lowerOrderFinal = i === len - 1 && lof && len < 15;
    const lowerOrderSecond = i === len - 2 && lof && len < 15;
    // convert_model_output: x0 first (so thresholding applies), then back to epsilon.
    const x0 = this.toX0(modelOutput, sample, i, opts);
    const { alpha, sigma } = this.alphaSigma(this.sigmaTable[i]!);
    const eps = sample.map((x, k) => f(f(x - f(alpha * x0[k]!)) / sigma));
    const order = this.config.solver_order as number;
    for (let k = 0; k < order - 1; k++) this.modelOutputs[k] = this.modelOutputs[k + 1]!;
    this.modelOutputs[order - 1] = eps;
    let prev: Float32Array;
    if (order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) prev = this.firstOrder(eps, sample, i);
    else if (order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) prev = this.secondOrder(sample, i);
    else prev = this.thirdOrder(sample, i);
    if (this.lowerOrderNums < order) this.lowerOrderNums++;
    this.stepIndex = i + 1;
    return prev;
  }

  private firstOrder(m: Float32Array, x: Float32Array, i: number): Float32Array {
    const t = this.alphaSigma(this.sigmaTable[i + 1]!);
    const s = this.alphaSigma(this.sigmaTable[i]!);
    const h = f(t.lambda - s.lambda);
    const cx = f(t.alpha / s.alpha);
    const cm = f(t.sigma * f(f(Math.exp(h)) - 1));
    return x.map((v, k) => f(f(cx * v) - f(cm * m[k]!)));
  }

  private secondOrder(x: Float32Array, i: number): Float32Array {
    const [t, s0, s1] = [i + 1, i, i - 1].map((j) => this.alphaSigma(this.sigmaTable[j]!)) as [ReturnType<typeof this.alphaSigma>, ReturnType<typeof this.alphaSigma>, ReturnType<typeof this.alphaSigma>];
    const n = this.modelOutputs.length;
    const m0 = this.modelOutputs[n - 1]!;
    const m1 = this.modelOutputs[n - 2]!;
    const rt = f(t.sigma / t.alpha);
    const r0 = f(s0.sigma / s0.alpha);
    const r1 = f(s1.sigma / s1.alpha);
    const ind = (tt: number, b: number, c: number) => f(f(tt * f(f(f(-ln(c)) + ln(tt)) - 1)) / f(ln(b) - ln(c)));
    const c1 = f(ind(rt, r0, r1) - ind(r0, r0, r1));
    const c2 = f(ind(rt, r1, r0) - ind(r0, r1, r0));
    return x.map((v, k) => f(t.alpha * f(f(f(v / s0.alpha) + f(c1 * m0[k]!)) + f(c2 * m1[k]!))));
  }

  private thirdOrder(x: Float32Array, i: number): Float32Array {
    const [t, s0, s1, s2] = [i + 1, i, i - 1, i - 2].map((j) => this.alphaSigma(this.sigmaTable[j]!)) as ReturnType<typeof this.alphaSigma>[];
    const n = this.modelOutputs.length;
    const m0 = this.modelOutputs[n - 1]!;
    const m1 = this.modelOutputs[n - 2]!;
    const m2 = this.modelOutputs[n - 3]!;
    const rho = (a: ReturnType<typeof this.alphaSigma>) => f(a.sigma / a.alpha);
    const [rt, r0, r1, r2] = [t!, s0!, s1!, s2!].map(rho) as [number, number, number, number];
    const ind = (tt: number, b: number, c: number, d: number) => {
      const lt = ln(tt);
      const lc = ln(c);
      const ld = ln(d);
      const lb = ln(b);
      let inner = f(lc * f(f(ld - lt) + 1));
      inner = f(inner - f(ld * lt));
      inner = f(inner + ld);
      inner = f(inner + f(lt * lt));
      inner = f(inner - f(2 * lt));
      inner = f(inner + 2);
      const num = f(tt * inner);
      return f(num / f(f(lb - lc) * f(lb - ld)));
    };
    const c1 = f(ind(rt, r0, r1, r2) - ind(r0, r0, r1, r2));
    const c2 = f(ind(rt, r1, r2, r0) - ind(r0, r1, r2, r0));
    const c3 = f(ind(rt, r2, r0, r1) - ind(r0, r2, r0, r1));
    const a = t!.alpha;
    return x.map((v, k) => f(a * f(f(f(f(v / s0!.alpha) + f(c1 * m0[k]!)) + f(c2 * m1[k]!)) + f(c3 * m2[k]!))));
  }
}
