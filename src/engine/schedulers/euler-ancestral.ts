// EulerAncestralDiscreteScheduler: an Euler step to sigma_down plus fresh noise of size sigma_up.
import { BETA_DEFAULTS, f, requireGenerator } from './common.ts';
import { SigmaScheduler } from './sigma-base.ts';
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
    this.sigmaTable = Float32Array.from([...this.trainSigmas].reverse().concat([0]));
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
    const from2 = f(sigma * sigma);
    const to = this.sigmaTable[i + 1]!;
    const to2 = f(to * to);
    const sigmaUp = f(Math.sqrt(f(f(to2 * f(from2 - to2)) / from2)));
    const sigmaDown = f(Math.sqrt(f(to2 - f(sigmaUp * sigmaUp))));
    const dt = f(sigmaDown - sigma);
    const prev = sample.map((x, k) => f(x + f(f(f(x - pred[k]!) / sigma) * dt)));
    const noise = requireGenerator(opts, this.name).randn([prev.length]);
    this.stepIndex = i + 1;
    return prev.map((x, k) => f(x + f(noise[k]! * sigmaUp)));
  }
}
