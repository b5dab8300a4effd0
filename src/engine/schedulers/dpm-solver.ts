// DPM-Solver(++) (Lu et al. 2022), shared by DPMSolverMultistep and DPMSolverSinglestep: the update
// x_t = a x_s + sum_k c_k D_k (+ a noise term for the SDE forms) with the coefficients of diffusers'
// *_first/second/third_order_update in float32 (DEIS's first-order step is the noise-prediction one), the
// config normalisation, and the DpmSolverScheduler base with the parts of step() both classes have.
import { f, requireGenerator } from './common.ts';
import { type AlphaSigma, MultistepScheduler, combine } from './multistep-base.ts';
import type { SchedulerConfig, StepOptions } from './types.ts';

type Term = [1 | -1, number];

interface Coefficients {
  x: number;
  /** Of D0, the converted model output at s (the whole first-order update). */
  d0: Term;
  /** Of D1 in the second-order midpoint update. */
  d1Midpoint: Term;
  /** Of D1 in the Taylor form (second-order heun, every third-order update). */
  d1: Term;
  /** Of D2 (third order); null where diffusers has no third-order update. */
  d2: Term | null;
  /** Of the noise (SDE forms), else null. */
  noise: number | null;
}

/** The coefficients of a step from s to t, h = lambda_t - lambda_s. */
function coefficients(algorithm: string, t: AlphaSigma, s: AlphaSigma, h: number): Coefficients {
  const h2 = f(h * h);
  switch (algorithm) {
    case 'dpmsolver++': {
      const em = f(Math.exp(-h));
      const c = f(t.alpha * f(em - 1));
      return {
        x: f(t.sigma / s.sigma),
        d0: [-1, c],
        d1Midpoint: [-1, f(0.5 * c)],
        d1: [1, f(t.alpha * f(f(f(em - 1) / h) + 1))],
        d2: [-1, f(t.alpha * f(f(f(f(em - 1) + h) / h2) - 0.5))],
        noise: null,
      };
    }
    case 'dpmsolver': {
      const ep = f(Math.exp(h));
      const c = f(t.sigma * f(ep - 1));
      return {
        x: f(t.alpha / s.alpha),
        d0: [-1, c],
        d1Midpoint: [-1, f(0.5 * c)],
        d1: [-1, f(t.sigma * f(f(f(ep - 1) / h) - 1))],
        d2: [-1, f(t.sigma * f(f(f(f(ep - 1) - h) / h2) - 0.5))],
        noise: null,
      };
    }
    case 'sde-dpmsolver++': {
      const e2 = f(Math.exp(f(-2 * h)));
      const m2h = f(-2 * h);
      const c = f(t.alpha * f(1 - e2));
      return {
        x: f(f(t.sigma / s.sigma) * f(Math.exp(-h))),
        d0: [1, c],
        d1Midpoint: [1, f(0.5 * c)],
        d1: [1, f(t.alpha * f(f(f(1 - e2) / m2h) + 1))],
        d2: [1, f(t.alpha * f(f(f(f(1 - e2) + m2h) / f(m2h * m2h)) - 0.5))],
        noise: f(t.sigma * f(Math.sqrt(f(1 - e2)))),
      };
    }
    case 'sde-dpmsolver': {
      const ep = f(Math.exp(h));
      const c = f(t.sigma * f(ep - 1));
      return {
        x: f(t.alpha / s.alpha),
        d0: [-1, f(2 * c)],
        d1Midpoint: [-1, c],
        d1: [-1, f(2 * f(t.sigma * f(f(f(ep - 1) / h) - 1)))],
        d2: null,
        noise: f(t.sigma * f(Math.sqrt(f(f(Math.exp(f(2 * h))) - 1)))),
      };
    }
    default:
      throw new Error(`${algorithm} is not a DPM-Solver algorithm_type`);
  }
}

/**
 * One DPM-Solver(++) update from state s to state t, starting at sample x. `derivs` is [D0] (first order),
 * [D0, D1] (second) or [D0, D1, D2] (third); `midpointD1` gives D1 the second-order midpoint coefficient
 * instead of the Taylor one. `noise` is needed by the SDE forms only.
 */
export function dpmSolverUpdate(
  algorithm: string, t: AlphaSigma, s: AlphaSigma, x: Float32Array, derivs: Float32Array[], midpointD1: boolean,
  noise: Float32Array | null,
): Float32Array {
  const c = coefficients(algorithm, t, s, f(t.lambda - s.lambda));
  const [D0, D1, D2] = derivs;
  const terms: [1 | -1, number, Float32Array][] = [[1, c.x, x], [...c.d0, D0!]];
  if (D1) terms.push([...(midpointD1 ? c.d1Midpoint : c.d1), D1]);
  if (D2) {
    if (!c.d2) throw new Error(`${algorithm} has no third-order update in diffusers`);
    terms.push([...c.d2, D2]);
  }
  if (c.noise !== null) terms.push([1, c.noise, noise!]);
  return combine(terms);
}

/** (a - b) / r as diffusers writes it, (1.0 / r) * (a - b), in float32. */
export function scaledDiff(a: Float32Array, b: Float32Array, r: number): Float32Array {
  const k = f(1 / r);
  return a.map((v, i) => f(k * f(v - b[i]!)));
}

/**
 * Normalises algorithm_type/solver_type like the diffusers constructors (deis -> dpmsolver++ etc.) and
 * rejects what they reject.
 */
export function normaliseDpmConfig(config: SchedulerConfig, cls: string, algorithms: readonly string[]): SchedulerConfig {
  const c = { ...config };
  if (!algorithms.includes(c.algorithm_type as string)) {
    if (c.algorithm_type === 'deis') c.algorithm_type = 'dpmsolver++';
    else throw new Error(`${String(c.algorithm_type)} is not implemented for ${cls}`);
  }
  if (c.solver_type !== 'midpoint' && c.solver_type !== 'heun') {
    if (['logrho', 'bh1', 'bh2'].includes(c.solver_type as string)) c.solver_type = 'midpoint';
    else throw new Error(`${String(c.solver_type)} is not implemented for ${cls}`);
  }
  if (c.lambda_min_clipped !== -Infinity && c.lambda_min_clipped !== null && c.lambda_min_clipped !== undefined) {
    throw new Error('lambda_min_clipped is not supported');
  }
  if (!['dpmsolver++', 'sde-dpmsolver++'].includes(c.algorithm_type as string) && c.final_sigmas_type === 'zero') {
    throw new Error(`\`final_sigmas_type\` ${String(c.final_sigmas_type)} is not supported for \`algorithm_type\` ${String(c.algorithm_type)}. Please choose \`sigma_min\` instead.`);
  }
  return c;
}

/**
 * What DPMSolverMultistep and DPMSolverSinglestep share: the config normalisation, the converted model
 * output (data prediction for the ++ forms, noise prediction otherwise), the SDE noise and the update.
 */
export abstract class DpmSolverScheduler extends MultistepScheduler {
  constructor(config: SchedulerConfig, cls: string, algorithms: readonly string[]) {
    super(normaliseDpmConfig(config, cls, algorithms));
  }

  protected get algorithm(): string {
    return this.config.algorithm_type as string;
  }

  /** convert_model_output: x0 for dpmsolver++ / sde-dpmsolver++, epsilon for dpmsolver / sde-dpmsolver. */
  protected convert(modelOutput: Float32Array, sample: Float32Array, i: number, opts: StepOptions): Float32Array {
    return this.algorithm.endsWith('++') ? this.toX0(modelOutput, sample, i, opts) : this.toEps(modelOutput, sample, i, opts);
  }

  /** The step's noise from the request's generator (SDE forms only). */
  protected sdeNoise(opts: StepOptions, length: number): Float32Array | null {
    return this.algorithm.startsWith('sde-') ? requireGenerator(opts, this.name).randn([length]) : null;
  }

  protected update(t: AlphaSigma, s: AlphaSigma, x: Float32Array, derivs: Float32Array[], midpointD1: boolean, noise: Float32Array | null): Float32Array {
    return dpmSolverUpdate(this.algorithm, t, s, x, derivs, midpointD1, noise);
  }

  /** From table index i to i + 1 with the converted output m. */
  protected firstOrder(m: Float32Array, x: Float32Array, noise: Float32Array | null, i: number): Float32Array {
    const [t, s] = this.states(i, 2);
    return this.update(t, s, x, [m], false, noise);
  }

  /**
   * Order 2 to table index i + 1 with the two newest outputs m0 (at i) and m1 (at i - 1), from the point
   * `from` with sample x there: 0 is m0's point (multistep), 1 is m1's (singlestep: the start of its group).
   */
  protected secondOrder(x: Float32Array, noise: Float32Array | null, i: number, from: 0 | 1): Float32Array {
    const [t, s0, s1] = this.states(i, 3);
    const [m0, m1] = this.latestOutputs(2);
    const s = from === 0 ? s0 : s1;
    const r0 = f(f(s0.lambda - s1.lambda) / f(t.lambda - s.lambda));
    const D1 = scaledDiff(m0, m1, r0);
    return this.update(t, s, x, [from === 0 ? m0 : m1, D1], this.config.solver_type === 'midpoint', noise);
  }
}
