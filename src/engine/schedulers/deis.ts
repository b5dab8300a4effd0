// DEISMultistepScheduler (Zhang & Chen 2022), log-rho variant: polynomial extrapolation of the noise
// prediction in log(sigma/alpha), orders 1-3.
import { BETA_DEFAULTS, f } from './common.ts';
import { dpmSolverUpdate } from './dpm-solver.ts';
import { type AlphaSigma, MultistepScheduler } from './multistep-base.ts';
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
/** sigma_t / alpha_t, DEIS's rho. */
const rho = (a: AlphaSigma) => f(a.sigma / a.alpha);

export class DEISMultistepScheduler extends MultistepScheduler {
  readonly name = 'DEISMultistepScheduler' as const;

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
    this.resetHistory();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    this.requireTimesteps();
    const i = this.initStepIndex(timestep);
    // convert_model_output: x0 first (so thresholding applies), then back to epsilon.
    const x0 = this.toX0(modelOutput, sample, i, opts);
    const { alpha, sigma } = this.alphaSigma(this.sigmaTable[i]!);
    const eps = sample.map((x, k) => f(f(x - f(alpha * x0[k]!)) / sigma));
    this.pushModelOutput(eps);
    const order = this.multistepOrder(i, false);
    const prev = order === 1 ? this.firstOrder(eps, sample, i) : order === 2 ? this.secondOrder(sample, i) : this.thirdOrder(sample, i);
    this.warmUp();
    this.stepIndex = i + 1;
    return prev;
  }

  /** diffusers' deis_first_order_update: DPM-Solver's first-order noise-prediction step. */
  private firstOrder(m: Float32Array, x: Float32Array, i: number): Float32Array {
    const [t, s] = this.states(i, 2);
    return dpmSolverUpdate('dpmsolver', t, s, x, [m], false, null);
  }

  private secondOrder(x: Float32Array, i: number): Float32Array {
    const [t, s0, s1] = this.states(i, 3);
    const [m0, m1] = this.latestOutputs(2);
    const [rt, r0, r1] = [t, s0, s1].map(rho) as [number, number, number];
    const ind = (tt: number, b: number, c: number) => f(f(tt * f(f(f(-ln(c)) + ln(tt)) - 1)) / f(ln(b) - ln(c)));
    const c1 = f(ind(rt, r0, r1) - ind(r0, r0, r1));
    const c2 = f(ind(rt, r1, r0) - ind(r0, r1, r0));
    return x.map((v, k) => f(t.alpha * f(f(f(v / s0.alpha) + f(c1 * m0[k]!)) + f(c2 * m1[k]!))));
  }

  private thirdOrder(x: Float32Array, i: number): Float32Array {
    const [t, s0, s1, s2] = this.states(i, 4);
    const [m0, m1, m2] = this.latestOutputs(3);
    const [rt, r0, r1, r2] = [t, s0, s1, s2].map(rho) as [number, number, number, number];
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
    const a = t.alpha;
    return x.map((v, k) => f(a * f(f(f(f(v / s0.alpha) + f(c1 * m0[k]!)) + f(c2 * m1[k]!)) + f(c3 * m2[k]!))));
  }
}
