// DPMSolverMultistepScheduler: DPM-Solver / DPM-Solver++ (Lu et al. 2022) in their ODE and SDE forms,
// orders 1-3, multistep (one model call per step, reusing the previous outputs).
import { BETA_DEFAULTS, f } from './common.ts';
import { DpmSolverScheduler, scaledDiff } from './dpm-solver.ts';
import { sub } from './multistep-base.ts';
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

export class DPMSolverMultistepScheduler extends DpmSolverScheduler {
  readonly name = 'DPMSolverMultistepScheduler' as const;

  constructor(config: SchedulerConfig) {
    super(config, 'DPMSolverMultistepScheduler', DPM_ALGORITHMS);
    this.timesteps = this.trainTimesteps();
    this.sigmaTable = Float32Array.from(this.trainSigmas);
  }

  setTimesteps(n: number): void {
    this.buildSchedule(n, this.spacedTimesteps(n), 'train_min', this.config.beta_schedule !== 'squaredcos_cap_v2');
    this.resetHistory();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    this.requireTimesteps();
    const i = this.initStepIndex(timestep);
    const converted = this.convert(modelOutput, sample, i, opts);
    this.pushModelOutput(converted);
    const noise = this.sdeNoise(opts, sample.length);
    const order = this.multistepOrder(i, Boolean(this.config.euler_at_final) || this.config.final_sigmas_type === 'zero');
    const prev = order === 1 ? this.firstOrder(converted, sample, noise, i) : order === 2 ? this.secondOrder(sample, noise, i, 0) : this.thirdOrder(sample, noise, i);
    this.warmUp();
    this.stepIndex = i + 1;
    return prev;
  }

  private thirdOrder(x: Float32Array, noise: Float32Array | null, i: number): Float32Array {
    const [t, s0, s1, s2] = this.states(i, 4);
    const [m0, m1, m2] = this.latestOutputs(3);
    const h = f(t.lambda - s0.lambda);
    const r0 = f(f(s0.lambda - s1.lambda) / h);
    const r1 = f(f(s1.lambda - s2.lambda) / h);
    const D10 = scaledDiff(m0, m1, r0);
    const D11 = scaledDiff(m1, m2, r1);
    const diff = sub(D10, D11);
    const k1 = f(r0 / f(r0 + r1));
    const k2 = f(1 / f(r0 + r1));
    const D1 = D10.map((v, k) => f(v + f(k1 * diff[k]!)));
    const D2 = diff.map((v) => f(k2 * v));
    return this.update(t, s0, x, [m0, D1, D2], false, noise);
  }
}
