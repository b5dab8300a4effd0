// LCMScheduler (latent consistency models): each step jumps to a denoised estimate through the consistency
// boundary condition (c_skip, c_out), then re-noises it to the next timestep with fresh noise.
import { AlphaScheduler } from './alpha-base.ts';
import { BETA_DEFAULTS, f, indexForTimestep, npLinspace, requireGenerator } from './common.ts';
import type { StepOptions } from './types.ts';

export const LCM_DEFAULTS = {
  ...BETA_DEFAULTS,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  original_inference_steps: 50,
  clip_sample: false as boolean,
  clip_sample_range: 1.0,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  timestep_scaling: 10.0,
  rescale_betas_zero_snr: false,
};

export class LCMScheduler extends AlphaScheduler {
  readonly name = 'LCMScheduler' as const;
  private stepIndex: number | null = null;

  /** `strength` < 1 restricts the origin schedule to the first original_steps*strength entries (img2img). */
  setTimesteps(n: number, opts: { strength?: number } = {}): void {
    const strength = opts.strength ?? 1;
    const T = this.config.num_train_timesteps as number;
    const original = this.config.original_inference_steps as number;
    if (original > T) throw new Error(`\`original_steps\`: ${original} cannot be larger than \`self.config.train_timesteps\`: ${T}`);
    this.checkSteps(n);
    const k = Math.floor(T / original);
    const origin: number[] = [];
    for (let i = 1; i <= Math.trunc(original * strength); i++) origin.push(i * k - 1);
    const skipping = Math.floor(origin.length / n);
    if (skipping < 1) {
      throw new Error(`The combination of \`original_steps x strength\`: ${original} x ${strength} is smaller than \`num_inference_steps\`: ${n}.`);
    }
    if (n > original) {
      throw new Error(`\`num_inference_steps\`: ${n} cannot be larger than \`original_inference_steps\`: ${original} because the final timestep schedule will be a subset of the \`original_inference_steps\`-sized initial timestep schedule.`);
    }
    this.numInferenceSteps = n;
    origin.reverse();
    // np.linspace(0, len, num=n, endpoint=False), floored
    const idx = npLinspace(0, origin.length, n + 1).slice(0, n).map(Math.floor);
    this.timesteps = idx.map((i) => origin[i]!);
    this.stepIndex = null;
    this.beginIndex = null;
  }

  private boundaryScalings(t: number): { cSkip: number; cOut: number } {
    const sigmaData = 0.5;
    const st = f(t * f(this.config.timestep_scaling as number));
    const d = f(f(st * st) + f(sigmaData ** 2));
    return { cSkip: f(f(sigmaData ** 2) / d), cOut: f(st / f(Math.sqrt(d))) };
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    this.requireTimesteps();
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? indexForTimestep(this.timesteps, t);
    const i = this.stepIndex;
    const prevT = i + 1 < this.timesteps.length ? this.timesteps[i + 1]! : t;
    const a = this.alphasCumprod[t]!;
    const ap = this.alphaProdAt(prevT);
    const x0 = this.clipOrThreshold(this.x0AndEps(modelOutput, sample, a).x0, opts);
    const { cSkip, cOut } = this.boundaryScalings(t);
    const denoised = sample.map((x, k) => f(f(cOut * x0[k]!) + f(cSkip * x)));
    let prev = denoised;
    if (i !== this.numInferenceSteps - 1) {
      const noise = requireGenerator(opts, this.name).randn([denoised.length]);
      const sa = f(Math.sqrt(ap));
      const sb = f(Math.sqrt(f(1 - ap)));
      prev = denoised.map((x, k) => f(f(sa * x) + f(sb * noise[k]!)));
    }
    this.stepIndex = i + 1;
    return prev;
  }
}
