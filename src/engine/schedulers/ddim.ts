// DDIMScheduler (Song et al. 2020): deterministic with eta = 0, stochastic with eta > 0.
import { AlphaScheduler } from './alpha-base.ts';
import { BETA_DEFAULTS, f, requireGenerator } from './common.ts';
import type { SchedulerConfig, StepOptions } from './types.ts';

export const DDIM_DEFAULTS = {
  ...BETA_DEFAULTS,
  clip_sample: true as boolean,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  clip_sample_range: 1.0,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  rescale_betas_zero_snr: false,
};

export class DDIMScheduler extends AlphaScheduler {
  readonly name = 'DDIMScheduler' as const;

  constructor(config: SchedulerConfig) {
    super(config);
    this.timesteps = this.trainTimesteps();
  }

  setTimesteps(n: number): void {
    this.setSpacedTimesteps(n);
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    this.requireTimesteps();
    const eta = opts.eta ?? 0;
    const prevT = t - Math.floor((this.config.num_train_timesteps as number) / this.numInferenceSteps);
    const a = this.alphasCumprod[t]!;
    const ap = this.alphaProdAt(prevT);
    const { x0: raw, eps } = this.x0AndEps(modelOutput, sample, a);
    const x0 = this.clipOrThreshold(raw, opts);
    const variance = f(f(f(1 - ap) / f(1 - a)) * f(1 - f(a / ap)));
    const std = f(f(eta) * f(Math.sqrt(variance)));
    const dirCoef = f(Math.sqrt(f(f(1 - ap) - f(std * std))));
    const sap = f(Math.sqrt(ap));
    let prev = sample.map((_, i) => f(f(sap * x0[i]!) + f(dirCoef * eps[i]!)));
    if (eta > 0) {
      const noise = requireGenerator(opts, this.name).randn([prev.length]);
      prev = prev.map((x, i) => f(x + f(std * noise[i]!)));
    }
    return prev;
  }
}
