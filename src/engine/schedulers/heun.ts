// HeunDiscreteScheduler: second-order Heun (trapezoid) in sigma space; every step but the last (to sigma 0) costs two
// model calls, so the timestep table repeats each inner timestep.
import { BETA_DEFAULTS, f } from './common.ts';
import { SigmaScheduler, interleaveMiddle } from './sigma-base.ts';
import type { SchedulerConfig } from './types.ts';

export const HEUN_DEFAULTS = {
  ...BETA_DEFAULTS,
  beta_start: 0.00085,
  beta_end: 0.012,
  prediction_type: 'epsilon',
  use_karras_sigmas: false as boolean | null,
  use_exponential_sigmas: false as boolean | null,
  use_beta_sigmas: false as boolean | null,
  clip_sample: false as boolean | null,
  clip_sample_range: 1.0,
  timestep_spacing: 'linspace',
  steps_offset: 0,
};

export class HeunDiscreteScheduler extends SigmaScheduler {
  readonly name = 'HeunDiscreteScheduler' as const;
  override readonly order = 2;
  private prevDerivative: Float32Array | null = null;
  private dt: number | null = null;
  private firstSample: Float32Array | null = null;

  constructor(config: SchedulerConfig) {
    super(config);
    if (config.use_exponential_sigmas || config.use_beta_sigmas) throw new Error('exponential/beta sigmas are not supported');
    this.setTimesteps(config.num_train_timesteps as number);
  }

  setTimesteps(n: number): void {
    this.numInferenceSteps = n;
    const { timesteps, sigmas } = this.sigmaSchedule(n);
    this.sigmaTable = interleaveMiddle(Float32Array.from([...sigmas, 0]), false);
    this.timesteps = [timesteps[0]!, ...timesteps.slice(1).flatMap((t) => [t, t])].map(f);
    this.prevDerivative = null;
    this.dt = null;
    this.firstSample = null;
    this.resetIndex();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const i = this.initStepIndex(timestep);
    const first = this.dt === null;
    const sigma = first ? this.sigmaTable[i]! : this.sigmaTable[i - 1]!;
    const sigmaNext = first ? this.sigmaTable[i + 1]! : this.sigmaTable[i]!;
    let pred = this.predictOriginal(modelOutput, sample, first ? sigma : sigmaNext);
    if (this.config.clip_sample) {
      const r = this.config.clip_sample_range as number;
      pred = pred.map((v) => Math.min(Math.max(v, -r), r));
    }
    let out: Float32Array;
    if (first) {
      const derivative = sample.map((x, k) => f(f(x - pred[k]!) / sigma));
      const dt = f(sigmaNext - sigma);
      this.prevDerivative = derivative;
      this.dt = dt;
      this.firstSample = sample;
      out = sample.map((x, k) => f(x + f(derivative[k]! * dt)));
    } else {
      const prev = this.prevDerivative!;
      const dt = this.dt!;
      const base = this.firstSample!;
      const derivative = sample.map((x, k) => f(f(f(f(x - pred[k]!) / sigmaNext) + prev[k]!) / 2));
      out = base.map((x, k) => f(x + f(derivative[k]! * dt)));
      this.prevDerivative = null;
      this.dt = null;
      this.firstSample = null;
    }
    this.stepIndex = i + 1;
    return out;
  }
}
