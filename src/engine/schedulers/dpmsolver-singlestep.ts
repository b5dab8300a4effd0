// DPMSolverSinglestepScheduler: DPM-Solver(++) singlestep; each order-k step spans k table intervals and
// re-uses the sample at the start of the group (orders follow get_order_list).
import { BETA_DEFAULTS, f } from './common.ts';
import { DpmSolverScheduler, scaledDiff } from './dpm-solver.ts';
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

export class DPMSolverSinglestepScheduler extends DpmSolverScheduler {
  readonly name = 'DPMSolverSinglestepScheduler' as const;
  private groupSample: Float32Array | null = null;
  private orderList: number[] = [];

  constructor(config: SchedulerConfig) {
    super(config, 'DPMSolverSinglestepScheduler', ['dpmsolver', 'dpmsolver++', 'sde-dpmsolver++']);
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
    this.resetHistory();
    this.groupSample = null;
    // diffusers flips lower_order_final on (permanently, in the config) when the steps do not divide evenly.
    const order = this.config.solver_order as number;
    if (!this.config.lower_order_final && (n % order !== 0 || this.config.final_sigmas_type === 'zero')) {
      (this.config as Record<string, unknown>).lower_order_final = true;
    }
    this.orderList = this.orderListFor(n);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    this.requireTimesteps();
    const i = this.initStepIndex(timestep);
    const converted = this.convert(modelOutput, sample, i, opts);
    const n = this.modelOutputs.length;
    this.pushModelOutput(converted);
    const noise = this.sdeNoise(opts, sample.length);
    let order = this.orderList[i]!;
    while (this.modelOutputs[n - order] === null) order--;
    if (order === 1) this.groupSample = sample;
    const x = this.groupSample!;
    const prev = order === 1 ? this.firstOrder(converted, x, noise, i) : order === 2 ? this.secondOrder(x, noise, i, 1) : this.thirdOrder(x, noise, i);
    this.stepIndex = i + 1;
    return prev;
  }

  /** Order 3 over three table intervals, from the group's start s2 (D0 = its model output m2). */
  private thirdOrder(x: Float32Array, noise: Float32Array | null, i: number): Float32Array {
    const [t, s0, s1, s2] = this.states(i, 4);
    const [m0, m1, m2] = this.latestOutputs(3);
    const h = f(t.lambda - s2.lambda);
    const r0 = f(f(s0.lambda - s2.lambda) / h);
    const r1 = f(f(s1.lambda - s2.lambda) / h);
    const D10 = scaledDiff(m1, m2, r1);
    const D11 = scaledDiff(m0, m2, r0);
    // diffusers' midpoint form is the second-order Taylor update on D1_1; heun adds the D2 term.
    if (this.config.solver_type === 'midpoint') return this.update(t, s2, x, [m2, D11], false, noise);
    const dr = f(r0 - r1);
    const D1 = D10.map((v, k) => f(f(f(r0 * v) - f(r1 * D11[k]!)) / dr));
    const D2 = D11.map((v, k) => f(f(2 * f(v - D10[k]!)) / dr));
    return this.update(t, s2, x, [m2, D1, D2], false, noise);
  }
}
