// DPMSolverMultistepScheduler: DPM-Solver / DPM-Solver++ (Lu et al. 2022) in their ODE and SDE forms,
// orders 1-3, multistep (one model call per step, reusing the previous outputs).
import { BETA_DEFAULTS, f, requireGenerator } from './common.ts';
import { MultistepScheduler, combine, sub } from './multistep-base.ts';
import type { SchedulerConfig, StepOptions } from './types.ts';

export const DPM_MULTISTEP_DEFAULTS = {
  ...BETA_DEFAULTS,
  solver_order: 2,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  algorithm_type: 'dpmsolver++',
  solver_type: 'midpoint',
  lower_order_final: true,
  euler_at_final: false,
  use_karras_sigmas: false as boolean | null,
  use_exponential_sigmas: false as boolean | null,
  use_beta_sigmas: false as boolean | null,
  use_lu_lambdas: false as boolean | null,
  use_flow_sigmas: false as boolean | null,
  flow_shift: 1.0,
  final_sigmas_type: 'zero',
  lambda_min_clipped: -Infinity,
  variance_type: null as string | null,
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
  use_dynamic_shifting: false,
  time_shift_type: 'exponential',
};

export const DPM_ALGORITHMS = ['dpmsolver', 'dpmsolver++', 'sde-dpmsolver', 'sde-dpmsolver++'] as const;

/** Normalises algorithm_type/solver_type like the diffusers constructors (deis -> dpmsolver++ etc.). */
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
  return c;
}

export class DPMSolverMultistepScheduler extends MultistepScheduler {
  readonly name = 'DPMSolverMultistepScheduler' as const;
  private modelOutputs: (Float32Array | null)[] = [];
  private lowerOrderNums = 0;

  constructor(config: SchedulerConfig) {
    const c = normaliseDpmConfig(config, 'DPMSolverMultistepScheduler', DPM_ALGORITHMS);
    if (!['dpmsolver++', 'sde-dpmsolver++'].includes(c.algorithm_type as string) && c.final_sigmas_type === 'zero') {
      throw new Error(`\`final_sigmas_type\` ${String(c.final_sigmas_type)} is not supported for \`algorithm_type\` ${String(c.algorithm_type)}. Please choose \`sigma_min\` instead.`);
    }
    super(c);
    const T = c.num_train_timesteps as number;
    this.timesteps = Array.from({ length: T }, (_, i) => T - 1 - i);
    this.sigmaTable = Float32Array.from(this.trainSigmas);
  }

  setTimesteps(n: number): void {
    this.buildSchedule(n, this.spacedTimesteps(n), 'train_min', this.config.beta_schedule !== 'squaredcos_cap_v2');
    this.modelOutputs = new Array(this.config.solver_order as number).fill(null);
    this.lowerOrderNums = 0;
  }

  private get isSde(): boolean {
    return (this.config.algorithm_type as string).startsWith('sde-');
  }

  private get dataPrediction(): boolean {
    return this.config.algorithm_type === 'dpmsolver++' || this.config.algorithm_type === 'sde-dpmsolver++';
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    if (!this.numInferenceSteps) throw new Error("Number of inference steps is 'None', you need to run 'set_timesteps' after creating the scheduler");
    const i = this.initStepIndex(timestep);
    const len = this.timesteps.length;
    const lof = this.config.lower_order_final as boolean;
    const lowerOrderFinal = i === len - 1 && (Boolean(this.config.euler_at_final) || (lof && len < 15) || this.config.final_sigmas_type === 'zero');
    const lowerOrderSecond = i === len - 2 && lof && len < 15;
    const converted = this.dataPrediction ? this.toX0(modelOutput, sample, i, opts) : this.toEps(modelOutput, sample, i, opts);
    const order = this.config.solver_order as number;
    for (let k = 0; k < order - 1; k++) this.modelOutputs[k] = this.modelOutputs[k + 1]!;
    this.modelOutputs[order - 1] = converted;
    const noise = this.isSde ? requireGenerator(opts, this.name).randn([sample.length]) : null;
    let prev: Float32Array;
    if (order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) prev = this.firstOrder(converted, sample, noise, i);
    else if (order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) prev = this.secondOrder(sample, noise, i);
    else prev = this.thirdOrder(sample, noise, i);
    if (this.lowerOrderNums < order) this.lowerOrderNums++;
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
      case 'sde-dpmsolver++': {
        const e2 = f(Math.exp(f(-2 * h)));
        return combine([
          [1, f(f(t.sigma / s.sigma) * f(Math.exp(-h))), x],
          [1, f(t.alpha * f(1 - e2)), m],
          [1, f(t.sigma * f(Math.sqrt(f(1 - e2)))), noise!],
        ]);
      }
      default: { // sde-dpmsolver
        const eh = f(Math.exp(h));
        return combine([
          [1, f(t.alpha / s.alpha), x],
          [-1, f(2 * f(t.sigma * f(eh - 1))), m],
          [1, f(t.sigma * f(Math.sqrt(f(f(Math.exp(f(2 * h))) - 1)))), noise!],
        ]);
      }
    }
  }

  private secondOrder(x: Float32Array, noise: Float32Array | null, i: number): Float32Array {
    const t = this.alphaSigma(this.sigmaTable[i + 1]!);
    const s0 = this.alphaSigma(this.sigmaTable[i]!);
    const s1 = this.alphaSigma(this.sigmaTable[i - 1]!);
    const outs = this.modelOutputs;
    const m0 = outs[outs.length - 1]!;
    const m1 = outs[outs.length - 2]!;
    const h = f(t.lambda - s0.lambda);
    const h0 = f(s0.lambda - s1.lambda);
    const r0 = f(h0 / h);
    const D0 = m0;
    const D1 = sub(m0, m1).map((v) => f(f(1 / r0) * v));
    const mid = this.config.solver_type === 'midpoint';
    switch (this.config.algorithm_type) {
      case 'dpmsolver++': {
        const c = f(t.alpha * f(f(Math.exp(-h)) - 1));
        return mid
          ? combine([[1, f(t.sigma / s0.sigma), x], [-1, c, D0], [-1, f(0.5 * c), D1]])
          : combine([[1, f(t.sigma / s0.sigma), x], [-1, c, D0], [1, f(t.alpha * f(f(f(f(Math.exp(-h)) - 1) / h) + 1)), D1]]);
      }
      case 'dpmsolver': {
        const c = f(t.sigma * f(f(Math.exp(h)) - 1));
        return mid
          ? combine([[1, f(t.alpha / s0.alpha), x], [-1, c, D0], [-1, f(0.5 * c), D1]])
          : combine([[1, f(t.alpha / s0.alpha), x], [-1, c, D0], [-1, f(t.sigma * f(f(f(f(Math.exp(h)) - 1) / h) - 1)), D1]]);
      }
      case 'sde-dpmsolver++': {
        const e2 = f(Math.exp(f(-2 * h)));
        const c = f(t.alpha * f(1 - e2));
        const d1 = mid ? f(0.5 * c) : f(t.alpha * f(f(f(1 - e2) / f(-2 * h)) + 1));
        return combine([
          [1, f(f(t.sigma / s0.sigma) * f(Math.exp(-h))), x], [1, c, D0], [1, d1, D1],
          [1, f(t.sigma * f(Math.sqrt(f(1 - e2)))), noise!],
        ]);
      }
      default: { // sde-dpmsolver
        const c = f(t.sigma * f(f(Math.exp(h)) - 1));
        const d1 = mid ? c : f(2 * f(t.sigma * f(f(f(f(Math.exp(h)) - 1) / h) - 1)));
        return combine([
          [1, f(t.alpha / s0.alpha), x], [-1, f(2 * c), D0], [-1, d1, D1],
          [1, f(t.sigma * f(Math.sqrt(f(f(Math.exp(f(2 * h))) - 1)))), noise!],
        ]);
      }
    }
  }

  private thirdOrder(x: Float32Array, noise: Float32Array | null, i: number): Float32Array {
    const t = this.alphaSigma(this.sigmaTable[i + 1]!);
    const s0 = this.alphaSigma(this.sigmaTable[i]!);
    const s1 = this.alphaSigma(this.sigmaTable[i - 1]!);
    const s2 = this.alphaSigma(this.sigmaTable[i - 2]!);
    const outs = this.modelOutputs;
    const m0 = outs[outs.length - 1]!;
    const m1 = outs[outs.length - 2]!;
    const m2 = outs[outs.length - 3]!;
    const h = f(t.lambda - s0.lambda);
    const h0 = f(s0.lambda - s1.lambda);
    const h1 = f(s1.lambda - s2.lambda);
    const r0 = f(h0 / h);
    const r1 = f(h1 / h);
    const D10 = sub(m0, m1).map((v) => f(f(1 / r0) * v));
    const D11 = sub(m1, m2).map((v) => f(f(1 / r1) * v));
    const diff = sub(D10, D11);
    const k1 = f(r0 / f(r0 + r1));
    const k2 = f(1 / f(r0 + r1));
    const D1 = D10.map((v, k) => f(v + f(k1 * diff[k]!)));
    const D2 = diff.map((v) => f(k2 * v));
    const h2 = f(h * h);
    switch (this.config.algorithm_type) {
      case 'dpmsolver++': {
        const em = f(Math.exp(-h));
        return combine([
          [1, f(t.sigma / s0.sigma), x],
          [-1, f(t.alpha * f(em - 1)), m0],
          [1, f(t.alpha * f(f(f(em - 1) / h) + 1)), D1],
          [-1, f(t.alpha * f(f(f(f(em - 1) + h) / h2) - 0.5)), D2],
        ]);
      }
      case 'dpmsolver': {
        const ep = f(Math.exp(h));
        return combine([
          [1, f(t.alpha / s0.alpha), x],
          [-1, f(t.sigma * f(ep - 1)), m0],
          [-1, f(t.sigma * f(f(f(ep - 1) / h) - 1)), D1],
          [-1, f(t.sigma * f(f(f(f(ep - 1) - h) / h2) - 0.5)), D2],
        ]);
      }
      case 'sde-dpmsolver++': {
        const e2 = f(Math.exp(f(-2 * h)));
        const twoH = f(2 * h);
        return combine([
          [1, f(f(t.sigma / s0.sigma) * f(Math.exp(-h))), x],
          [1, f(t.alpha * f(1 - e2)), m0],
          [1, f(t.alpha * f(f(f(1 - e2) / f(-2 * h)) + 1)), D1],
          [1, f(t.alpha * f(f(f(f(1 - e2) - twoH) / f(twoH * twoH)) - 0.5)), D2],
          [1, f(t.sigma * f(Math.sqrt(f(1 - e2)))), noise!],
        ]);
      }
      default:
        throw new Error('sde-dpmsolver has no third-order update in diffusers');
    }
  }
}
