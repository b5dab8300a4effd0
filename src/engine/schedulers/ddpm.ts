// DDPMScheduler: ancestral sampling of Ho et al. (2020) on the chosen timestep subset.
import { AlphaScheduler } from './alpha-base.ts';
import { BETA_DEFAULTS, f, requireGenerator } from './common.ts';
import type { SchedulerConfig, StepOptions } from './types.ts';

export const DDPM_DEFAULTS = {
  ...BETA_DEFAULTS,
  variance_type: 'fixed_small',
  clip_sample: true as boolean,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  clip_sample_range: 1.0,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
};

export class DDPMScheduler extends AlphaScheduler {
  readonly name = 'DDPMScheduler' as const;

  constructor(config: SchedulerConfig) {
    super(config);
    if (!['fixed_small', 'fixed_small_log', 'fixed_large', 'fixed_large_log'].includes(config.variance_type as string)) {
      throw new Error(`variance_type ${String(config.variance_type)} is not supported (learned variances need a model that predicts them)`);
    }
    this.timesteps = this.trainTimesteps();
  }

  setTimesteps(n: number): void {
    this.setSpacedTimesteps(n);
  }

  private previousTimestep(t: number): number {
    if (!this.numInferenceSteps) return t - 1;
    const i = this.timesteps.indexOf(t);
    return i === this.timesteps.length - 1 ? -1 : this.timesteps[i + 1]!;
  }

  /** Posterior variance (or its log / std, by variance_type), float32. */
  private variance(t: number, prevT: number): number {
    const a = this.alphasCumprod[t]!;
    const ap = prevT >= 0 ? this.alphasCumprod[prevT]! : 1;
    const beta = f(1 - f(a / ap));
    const v = Math.max(f(f(f(1 - ap) / f(1 - a)) * beta), 1e-20);
    switch (this.config.variance_type) {
      case 'fixed_small': return v;
      case 'fixed_small_log': return f(Math.exp(f(0.5 * f(Math.log(v)))));
      case 'fixed_large': return beta;
      default: return f(Math.log(beta)); // fixed_large_log
    }
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    const prevT = this.previousTimestep(t);
    const a = this.alphasCumprod[t]!;
    const ap = prevT >= 0 ? this.alphasCumprod[prevT]! : 1;
    const b = f(1 - a);
    const bp = f(1 - ap);
    const curAlpha = f(a / ap);
    const curBeta = f(1 - curAlpha);
    const x0 = this.clipOrThreshold(this.x0AndEps(modelOutput, sample, a).x0, opts);
    const c0 = f(f(f(Math.sqrt(ap)) * curBeta) / b);
    const cs = f(f(f(Math.sqrt(curAlpha)) * bp) / b);
    let prev = sample.map((x, i) => f(f(c0 * x0[i]!) + f(cs * x)));
    if (t > 0) {
      const noise = requireGenerator(opts, this.name).randn([prev.length]);
      const v = this.variance(t, prevT);
      const scale = this.config.variance_type === 'fixed_small_log' ? v : f(Math.sqrt(v));
      prev = prev.map((x, i) => f(x + f(scale * noise[i]!)));
    }
    return prev;
  }
}
