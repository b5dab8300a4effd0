// Shared state of the schedulers that work on alphas_cumprod indexed by integer timestep (DDPM, DDIM,
// DDIM inverse, PNDM, LCM): unit initial noise, no input scaling, add_noise = sqrt(a) x + sqrt(1-a) noise.
import { TrainedScheduler } from './base.ts';
import type { SchedulerConfig, StepOptions } from './types.ts';
import { clampArray, f, spacedTimesteps, thresholdSample } from './common.ts';

export abstract class AlphaScheduler extends TrainedScheduler {
  readonly initNoiseSigma = 1;
  readonly sigmas = undefined;

  constructor(config: SchedulerConfig) {
    super(config, false);
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const a = this.alphasCumprod[timestep]!;
    const sa = f(Math.sqrt(a));
    const sb = f(Math.sqrt(f(1 - a)));
    return original.map((x, i) => f(f(sa * x) + f(sb * noise[i]!)));
  }

  /**
   * alphas_cumprod at training timestep t; before the first one (t < 0) 1 with set_alpha_to_one, else
   * alphas_cumprod[0] (diffusers' final_alpha_cumprod, DDIMInverse's initial_alpha_cumprod).
   */
  protected alphaProdAt(t: number): number {
    if (t >= 0) return this.alphasCumprod[t]!;
    return this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0]!;
  }

  /** set_timesteps of DDPM and DDIM: the configured spacing, rounded, descending. */
  protected setSpacedTimesteps(n: number): void {
    this.checkSteps(n);
    this.numInferenceSteps = n;
    this.timesteps = spacedTimesteps(this.config, n, true);
  }

  protected checkSteps(n: number): void {
    const T = this.config.num_train_timesteps as number;
    if (n > T) {
      throw new Error(`\`num_inference_steps\`: ${n} cannot be larger than \`self.config.train_timesteps\`: ${T} as the unet model trained with this scheduler can only handle maximal ${T} timesteps.`);
    }
  }

  /** Clip or dynamically threshold a predicted x0 where the class's config asks for it. */
  protected clipOrThreshold(x0: Float32Array, opts: StepOptions): Float32Array {
    if (this.config.thresholding) {
      return thresholdSample(x0, opts.batchSize ?? 1, this.config.dynamic_thresholding_ratio as number, this.config.sample_max_value as number);
    }
    if (this.config.clip_sample) return clampArray(x0, this.config.clip_sample_range as number);
    return x0;
  }

  /** x0 and epsilon from the model output (DDIM/DDPM/LCM conventions), float32 like the torch code. */
  protected x0AndEps(modelOutput: Float32Array, sample: Float32Array, alphaProd: number): { x0: Float32Array; eps: Float32Array } {
    const sa = f(Math.sqrt(alphaProd));
    const sb = f(Math.sqrt(f(1 - alphaProd)));
    switch (this.config.prediction_type) {
      case 'epsilon':
        return { x0: sample.map((x, i) => f(f(x - f(sb * modelOutput[i]!)) / sa)), eps: modelOutput };
      case 'sample':
        return { x0: modelOutput, eps: sample.map((x, i) => f(f(x - f(sa * modelOutput[i]!)) / sb)) };
      case 'v_prediction':
        return {
          x0: sample.map((x, i) => f(f(sa * x) - f(sb * modelOutput[i]!))),
          eps: sample.map((x, i) => f(f(sa * modelOutput[i]!) + f(sb * x))),
        };
      default:
        throw new Error(`prediction_type given as ${String(this.config.prediction_type)} must be one of \`epsilon\`, \`sample\`, or \`v_prediction\``);
    }
  }
}
