// EulerAncestralDiscreteScheduler: an Euler step to sigma_down plus fresh noise of size sigma_up.
import { BETA_DEFAULTS, f, requireGenerator } from './common.ts';
import { SigmaScheduler, ancestralStep, eulerStep } from './sigma-base.ts';
import type { SchedulerConfig, StepOptions } from './types.ts';

export const EULER_ANCESTRAL_DEFAULTS = {
  ...BETA_DEFAULTS,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
};

export class EulerAncestralDiscreteScheduler extends SigmaScheduler {
  readonly name = 'EulerAncestralDiscreteScheduler' as const;

  constructor(config: SchedulerConfig) {
    super(config);
    this.sigmaTable = this.trainingSigmaTable();
  }

  setTimesteps(n: number): void {
    this.numInferenceSteps = n;
    const { timesteps, sigmas } = this.baseSchedule(n);
    this.sigmaTable = Float32Array.from([...sigmas, 0]);
    this.timesteps = timesteps;
    this.resetIndex();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    const i = this.initStepIndex(timestep);
    const sigma = this.sigmaTable[i]!;
    const pred = this.predictOriginal(modelOutput, sample, sigma);
    const { up, down } = ancestralStep(sigma, this.sigmaTable[i + 1]!);
    const prev = eulerStep(sample, sample, pred, sigma, f(down - sigma));
    const noise = requireGenerator(opts, this.name).randn([prev.length]);
    this.stepIndex = i + 1;
    return prev.map((x, k) => f(x + f(noise[k]! * up)));
  }
}
