// EulerDiscreteScheduler (k-diffusion Algorithm 2 without churn, as SD pipelines run it).
import { BETA_DEFAULTS, f } from './common.ts';
import { SigmaScheduler, eulerStep } from './sigma-base.ts';
import type { SchedulerConfig } from './types.ts';

export const EULER_DEFAULTS = {
  ...BETA_DEFAULTS,
  prediction_type: 'epsilon',
  interpolation_type: 'linear',
  use_karras_sigmas: false as boolean | null,
  use_exponential_sigmas: false as boolean | null,
  use_beta_sigmas: false as boolean | null,
  sigma_min: null as number | null,
  sigma_max: null as number | null,
  timestep_spacing: 'linspace',
  timestep_type: 'discrete',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
  final_sigmas_type: 'zero',
};

export class EulerDiscreteScheduler extends SigmaScheduler {
  readonly name = 'EulerDiscreteScheduler' as const;

  constructor(config: SchedulerConfig) {
    super(config);
    if (config.use_exponential_sigmas || config.use_beta_sigmas) throw new Error('exponential/beta sigmas are not supported');
    if (config.timestep_type !== 'discrete') throw new Error('only timestep_type "discrete" is supported');
    this.sigmaTable = this.trainingSigmaTable();
  }

  setTimesteps(n: number): void {
    this.numInferenceSteps = n;
    const { timesteps, sigmas } = this.sigmaSchedule(n);
    if (this.config.interpolation_type === 'log_linear') {
      throw new Error('interpolation_type log_linear is not supported');
    } else if (this.config.interpolation_type !== 'linear') {
      throw new Error(`${String(this.config.interpolation_type)} is not implemented. Please specify interpolation_type to either 'linear' or 'log_linear'`);
    }
    let last: number;
    if (this.config.final_sigmas_type === 'sigma_min') last = this.trainSigmas[0]!;
    else if (this.config.final_sigmas_type === 'zero') last = 0;
    else throw new Error(`\`final_sigmas_type\` must be one of 'zero', or 'sigma_min', but got ${String(this.config.final_sigmas_type)}`);
    this.sigmaTable = Float32Array.from([...sigmas, last]);
    this.timesteps = timesteps.map(f);
    this.resetIndex();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const i = this.initStepIndex(timestep);
    const sigma = this.sigmaTable[i]!;
    const pred = this.predictOriginal(modelOutput, sample, sigma);
    const dt = f(this.sigmaTable[i + 1]! - sigma);
    this.stepIndex = i + 1;
    return eulerStep(sample, sample, pred, sigma, dt);
  }
}

