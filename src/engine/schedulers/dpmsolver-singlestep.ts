// DPMSolverSinglestepScheduler: DPM-Solver(++) singlestep; each order-k step spans k table intervals and
// re-uses the sample at the start of the group (orders follow get_order_list).
import { BETA_DEFAULTS, f, requireGenerator } from './common.ts';
import { normaliseDpmConfig } from './dpmsolver-multistep.ts';
import { MultistepScheduler, combine, sub } from './multistep-base.ts';
import type { SchedulerConfig, StepOptions } from './types.ts';

export const DPM_SINGLESTEP_DEFAULTS = {
  ...BETA_DEFAULTS,
  solver_order: 2,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  algorithm_type: 'dpmsolver++',
  solver_type: 'midpoint',
  lower_order_final: false,
  use_karras_sigmas: false as boolean | null,
  use_exponential_sigmas: false as boolean | null,
  use_beta_sigmas: false as boolean | null,
  use_flow_sigmas: false as boolean | null,
  flow_shift: 1.0,
  final_sigmas_type: 'zero',
  lambda_min_clipped: -Infinity,
  variance_type: null as string | null,
  use_dynamic_shifting: false,
  time_shift_type: 'exponential',
};

export class DPMSolverSinglestepScheduler extends MultistepScheduler {
  readonly name = 'DPMSolverSinglestepScheduler' as const;
  private modelOutputs: (Float32Array | null)[] = [];
  private groupSample: Float32Array | null = null;
  private orderList: number[] = [];

  constructor(config: SchedulerConfig) {
    const c = normaliseDpmConfig(config, 'DPMSolverSinglestepScheduler', ['dpmsolver', 'dpmsolver++', 'sde-dpmsolver++']);
    if (!['dpmsolver++', 'sde-dpmsolver++'].includes(c.algorithm_type as string) && c.final_sigmas_type === 'zero') {
      throw new Error(`\`final_sigmas_type\` ${String(c.final_sigmas_type)} is not supported for \`algorithm_type\` ${String(c.algorithm_type)}. Please choose \`sigma_min\` instead.`);
    }
    super(c);
  }

  /** get_order_list: which solver order each step uses. */
  orderListFor(steps: number): number[] {
    const order = this.config.solver_order as number;
    if (order > 3) throw new Error('Order > 3 is not supported by this scheduler');
    const rep = (pattern: number[], times: number) => Array.from({ length: Math.max(times, 0) }, () => pattern).flat();
    let orders: number[];
    if (this.config.lower_order_final) {
      if (order === 3) {
        if (steps % 3 === 0) orders = [...rep([1, 2, 3], Math.floor(steps / 3) - 1), 1, 2, 1];
        else if (steps % 3 === 1) orders = [...rep([1, 2, 3], Math.floor(steps / 3)), 1];
        else orders = [...rep([1, 2, 3], Math.floor(steps / 3)), 1, 2];
      } else if (order === 2) {
        orders = steps % 2 === 0 ? [...rep([1, 2], steps / 2 - 1), 1, 1] : [...rep([1, 2], Math.floor(steps / 2)), 1];
      } else orders = rep([1], steps);
    } else if (order === 3) orders = rep([1, 2, 3], Math.floor(steps / 3));
    else if (order === 2) orders = rep([1, 2], Math.floor(steps / 2));
    else orders = rep([1], steps);
    if (this.config.final_sigmas_type === 'zero') orders[orders.length - 1] = 1;
    return orders;
  }

  setTimesteps(n: number): void {
    this.buildSchedule(n, this.spacedTimesteps(n, 'linspace'), 'train_min');
    this.modelOutputs = new Array(this.config.solver_order as number).fill(null);
    this.groupSample = null;
    // diffusers flips lower_order_final on (permanently, in the config) when the steps do not divide evenly.
    const order = this.config.solver_order as number;
    if (!this.config.lower_order_final && (n % order !== 0 || this.config.final_sigmas_type === 'zero')) {
      (this.config as Record<string, unknown>).lower_order_final = true;
    }
    this.orderList = this.orderListFor(n);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    if (!this.numInferenceSteps) throw new Error("Number of inference steps is 'None', you need to run 'set_timesteps' after creating the scheduler");
    const i = this.initStepIndex(timestep);
    const dataPred = this.config.algorithm_type !== 'dpmsolver';
    const converted = dataPred ? this.toX0(modelOutput, sample, i, opts) : this.toEps(modelOutput, sample, i, opts);
    const n = this.modelOutputs.length;
    for (let k = 0; k < n - 1; k++) this.modelOutputs[k] = this.modelOutputs[k + 1]!;
    this.modelOutputs[n - 1] = converted;
    const noise = this.config.algorithm_type === 'sde-dpmsolver++' ? requireGenerator(opts, this.name).randn([sample.length]) : null;
    let order = this.orderList[i]!;
    while (this.modelOutputs[n - order] === null) order--;
    if (order === 1) this.groupSample = sample;
    const x = this.groupSample!;
    const prev = order === 1 ? this.firstOrder(converted, x, noise, i) : order === 2 ? this.secondOrder(x, noise, i) : this.thirdOrder(x, noise, i);
    this.stepIndex = i + 1;
    return prev;
  }

  private firstOrder(m: Float32Array, x: Float32Array, noise: Float32Array | null, i: number): Float32Array {
    const t = this.alphaSigma(this.sigmaTable[i + 1]!);
    const s = this.alphaSigma(this.sigmaTable[i]!);
    const h = f(t.lambda - s.lambda);
    switch (this.config.algorithm_type) {
      case 'dpmsolver++':
        return combine([[1, f(t.sigma / s.sigma), x], [-1, f(t.alpha * f(f(Math.exp(-h)) - 1)), m]]);
      case 'dpmsolver':
        return combine([[1, f(t.alpha / s.alpha), x], [-1, f(t.sigma * f(f(Math.exp(h)) - 1)), m]]);
      default: {
        const e2 = f(Math.exp(f(-2 * h)));
        return combine([
          [1, f(f(t.sigma / s.sigma) * f(Math.exp(-h))), x],
          [1, f(t.alpha * f(1 - e2)), m],
          [1, f(t.sigma * f(Math.sqrt(f(1 - e2)))), noise!],
        ]);
      }
    }
  }

  /** The shared tail of the order-2/3 updates: [x coef, D0 coef, D1 coef(s)] per algorithm and solver type. */
  private secondOrder(x: Float32Array, noise: Float32Array | null, i: number): Float32Array {
    const t = this.alphaSigma(this.sigmaTable[i + 1]!);
    const s0 = this.alphaSigma(this.sigmaTable[i]!);
    const s1 = this.alphaSigma(this.sigmaTable[i - 1]!);
    const n = this.modelOutputs.length;
    const m0 = this.modelOutputs[n - 1]!;
    const m1 = this.modelOutputs[n - 2]!;
    const h = f(t.lambda - s1.lambda);
    const h0 = f(s0.lambda - s1.lambda);
    const r0 = f(h0 / h);
    const D0 = m1;
    const D1 = sub(m0, m1).map((v) => f(f(1 / r0) * v));
    const mid = this.config.solver_type === 'midpoint';
    switch (this.config.algorithm_type) {
      case 'dpmsolver++': {
        const c = f(t.alpha * f(f(Math.exp(-h)) - 1));
        const d1: [1 | -1, number] = mid ? [-1, f(0.5 * c)] : [1, f(t.alpha * f(f(f(f(Math.exp(-h)) - 1) / h) + 1))];
        return combine([[1, f(t.sigma / s1.sigma), x], [-1, c, D0], [d1[0], d1[1], D1]]);
      }
      case 'dpmsolver': {
        const c = f(t.sigma * f(f(Math.exp(h)) - 1));
        const d1 = mid ? f(0.5 * c) : f(t.sigma * f(f(f(f(Math.exp(h)) - 1) / h) - 1));
        return combine([[1, f(t.alpha / s1.alpha), x], [-1, c, D0], [-1, d1, D1]]);
      }
      default: {
        const e2 = f(Math.exp(f(-2 * h)));
        const c = f(t.alpha * f(1 - e2));
        const d1 = mid ? f(0.5 * c) : f(t.alpha * f(f(f(1 - e2) / f(-2 * h)) + 1));
        return combine([
          [1, f(f(t.sigma / s1.sigma) * f(Math.exp(-h))), x], [1, c, D0], [1, d1, D1],
          [1, f(t.sigma * f(Math.sqrt(f(1 - e2)))), noise!],
        ]);
      }
    }
  }

  private thirdOrder(x: Float32Array, noise: Float32Array | null, i: number): Float32Array {
    const t = this.alphaSigma(this.sigmaTable[i + 1]!);
    const s0 = this.alphaSigma(this.sigmaTable[i]!);
    const s1 = this.alphaSigma(this.sigmaTable[i - 1]!);
    const s2 = this.alphaSigma(this.sigmaTable[i - 2]!);
    const n = this.modelOutputs.length;
    const m0 = this.modelOutputs[n - 1]!;
    const m1 = this.modelOutputs[n - 2]!;
    const m2 = this.modelOutputs[n - 3]!;
    const h = f(t.lambda - s2.lambda);
    const h0 = f(s0.lambda - s2.lambda);
    const h1 = f(s1.lambda - s2.lambda);
    const r0 = f(h0 / h);
    const r1 = f(h1 / h);
    const D0 = m2;
    const D10 = sub(m1, m2).map((v) => f(f(1 / r1) * v));
    const D11 = sub(m0, m2).map((v) => f(f(1 / r0) * v));
    const dr = f(r0 - r1);
    const D1 = D10.map((v, k) => f(f(f(r0 * v) - f(r1 * D11[k]!)) / dr));
    const D2 = D11.map((v, k) => f(f(2 * f(v - D10[k]!)) / dr));
    const mid = this.config.solver_type === 'midpoint';
    const h2 = f(h * h);
    switch (this.config.algorithm_type) {
      case 'dpmsolver++': {
        const em = f(Math.exp(-h));
        const terms: [1 | -1, number, Float32Array][] = [
          [1, f(t.sigma / s2.sigma), x], [-1, f(t.alpha * f(em - 1)), D0],
          [1, f(t.alpha * f(f(f(em - 1) / h) + 1)), mid ? D11 : D1],
        ];
        if (!mid) terms.push([-1, f(t.alpha * f(f(f(f(em - 1) + h) / h2) - 0.5)), D2]);
        return combine(terms);
      }
      case 'dpmsolver': {
        const ep = f(Math.exp(h));
        const terms: [1 | -1, number, Float32Array][] = [
          [1, f(t.alpha / s2.alpha), x], [-1, f(t.sigma * f(ep - 1)), D0],
          [-1, f(t.sigma * f(f(f(ep - 1) / h) - 1)), mid ? D11 : D1],
        ];
        if (!mid) terms.push([-1, f(t.sigma * f(f(f(f(ep - 1) - h) / h2) - 0.5)), D2]);
        return combine(terms);
      }
      default: {
        const e2 = f(Math.exp(f(-2 * h)));
        const m2h = f(-2 * h);
        const terms: [1 | -1, number, Float32Array][] = [
          [1, f(f(t.sigma / s2.sigma) * f(Math.exp(-h))), x], [1, f(t.alpha * f(1 - e2)), D0],
          [1, f(t.alpha * f(f(f(1 - e2) / m2h) + 1)), mid ? D11 : D1],
        ];
        if (!mid) terms.push([1, f(t.alpha * f(f(f(f(1 - e2) + m2h) / f(m2h * m2h)) - 0.5)), D2]);
        terms.push([1, f(t.sigma * f(Math.sqrt(f(1 - e2)))), noise!]);
        return combine(terms);
      }
    }
  }
}
