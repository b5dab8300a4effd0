// IPNDMScheduler: improved pseudo-numerical (4th-order Adams-Bashforth) sampler on diffusers' own
// continuous schedule (t in (0, 1], alpha = cos-like, sigma = sin^2-like). Like diffusers it ignores the
// model's beta schedule; its timesteps are fractions, not training steps.
import { f, indexForTimestep, torchLinspaceF32 } from './common.ts';
import type { Scheduler, SchedulerConfig } from './types.ts';

export const IPNDM_DEFAULTS = {
  num_train_timesteps: 1000,
  trained_betas: null as number[] | null,
};

export class IPNDMScheduler implements Scheduler {
  readonly name = 'IPNDMScheduler' as const;
  readonly order = 1;
  readonly config: SchedulerConfig;
  readonly initNoiseSigma = 1;
  readonly sigmas = undefined;
  timesteps: number[] = [];
  numInferenceSteps = 0;
  private betas = new Float32Array(0);
  private alphas = new Float32Array(0);
  private ets: Float32Array[] = [];
  private stepIndex: number | null = null;
  private beginIndex: number | null = null;

  constructor(config: SchedulerConfig) {
    this.config = config;
    this.setTimesteps(config.num_train_timesteps as number);
    this.numInferenceSteps = 0;
  }

  setTimesteps(n: number): void {
    this.numInferenceSteps = n;
    const steps = [...torchLinspaceF32(1, 0, n + 1).slice(0, n), 0];
    const trained = this.config.trained_betas as number[] | null;
    // betas = sin(steps * pi / 2) ** 2 on float32 tensors
    this.betas = trained ? Float32Array.from(trained) : Float32Array.from(steps, (s) => {
      const v = f(Math.sin(f(f(s * f(Math.PI)) / 2)));
      return f(v * v);
    });
    this.alphas = this.betas.map((b) => f(Math.sqrt(f(1 - f(b * b)))));
    const pi = f(Math.PI);
    this.timesteps = Array.from(this.betas.slice(0, -1), (b, i) => f(f(f(Math.atan2(b, this.alphas[i]!)) / pi) * 2));
    this.ets = [];
    this.stepIndex = null;
    this.beginIndex = null;
  }

  setBeginIndex(index: number): void {
    this.beginIndex = index;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    if (!this.numInferenceSteps) throw new Error("Number of inference steps is 'None', you need to run 'set_timesteps' after creating the scheduler");
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? indexForTimestep(this.timesteps, timestep);
    const i = this.stepIndex;
    const bi = this.betas[i]!;
    const ai = this.alphas[i]!;
    this.ets.push(sample.map((x, k) => f(f(x * bi) + f(modelOutput[k]! * ai))));
    const e = this.ets;
    const n = e.length;
    const e1 = e[n - 1]!;
    let ets: Float32Array;
    if (n === 1) ets = e1;
    else if (n === 2) ets = e1.map((v, k) => f(f(f(3 * v) - e[n - 2]![k]!) / 2));
    else if (n === 3) ets = e1.map((v, k) => f(f(f(f(23 * v) - f(16 * e[n - 2]![k]!)) + f(5 * e[n - 3]![k]!)) / 12));
    else {
      const c = f(1 / 24);
      ets = e1.map((v, k) => f(c * f(f(f(f(55 * v) - f(59 * e[n - 2]![k]!)) + f(37 * e[n - 3]![k]!)) - f(9 * e[n - 4]![k]!))));
    }
    const alpha = ai;
    const sigma = bi;
    const nextAlpha = this.alphas[i + 1]!;
    const nextSigma = this.betas[i + 1]!;
    const denom = alpha > 1e-8 ? alpha : 1e-8;
    this.stepIndex = i + 1;
    return sample.map((x, k) => {
      const pred = f(f(x - f(sigma * ets[k]!)) / denom);
      return f(f(nextAlpha * pred) + f(ets[k]! * nextSigma));
    });
  }

  /**
   * diffusers' IPNDMScheduler has no add_noise (its img2img fails). We extend it with the noising its own
   * parametrisation implies, x = alpha_i x0 + sigma_i noise at the start index, so img2img can run.
   */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const i = this.beginIndex ?? indexForTimestep(this.timesteps, timestep);
    const a = this.alphas[i]!;
    const s = this.betas[i]!;
    return original.map((x, k) => f(f(a * x) + f(s * noise[k]!)));
  }
}
