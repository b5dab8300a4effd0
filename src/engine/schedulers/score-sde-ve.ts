// ScoreSdeVeScheduler. diffusers' class is the predictor-corrector sampler of Song et al. (2021) for
// variance-exploding score models: a reverse-diffusion predictor (step_pred) and Langevin corrector steps
// (step_correct) with a signal-to-noise ratio `snr`. The primitives below equal diffusers' on the same inputs.
//
// For SD models we run that PC sampler on the VP model viewed as a VE one: x_ve = x_vp * sqrt(sigma^2+1)
// and score(x, sigma) = -eps(x / sqrt(sigma^2+1), t(sigma)) / sigma. The discrete sigmas are geometric
// between the configured range clamped to the model's trained sigmas. Each step runs `correct_steps`
// corrector evaluations then one predictor evaluation at the same sigma, so `order` (evaluations per step,
// what img2img skips by) is correct_steps + 1. The last predictor returns its noise-free mean, as
// diffusers' ScoreSdeVePipeline returns sample_mean.
import { f, requireGenerator, torchLinspaceF32 } from './common.ts';
import type { TorchGenerator } from '../random/torch-generator.ts';
import type { SchedulerConfig, StepOptions } from './types.ts';
import { VeOnVpScheduler } from './ve-base.ts';

export const SCORE_SDE_VE_DEFAULTS = {
  num_train_timesteps: 2000,
  snr: 0.15,
  sigma_min: 0.01,
  sigma_max: 1348.0,
  sampling_eps: 1e-5,
  correct_steps: 1,
  // Not diffusers ScoreSdeVe keys: the VP noise schedule of the model we sample (SD 1.5 by default);
  // together with num_train_timesteps (which from_config takes from the model's config) they define it.
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  trained_betas: null as number[] | null,
};

/** set_timesteps + set_sigmas of diffusers' class: continuous t in [1, eps] and the discrete sigmas. */
export function scoreSdeVeTables(n: number, sigmaMin: number, sigmaMax: number, samplingEps: number) {
  const timesteps = torchLinspaceF32(1, samplingEps, n);
  const discrete = torchLinspaceF32(Math.log(sigmaMin), Math.log(sigmaMax), n).map((v) => f(Math.exp(v)));
  const ratio = f(sigmaMax / sigmaMin);
  const sigmas = timesteps.map((t) => f(f(sigmaMin) * f(Math.pow(ratio, t))));
  return { timesteps, discrete, sigmas };
}

/** step_pred: one reverse-diffusion step from the discrete sigma at t to the adjacent one. */
export function scoreSdeVeStepPred(score: Float32Array, t: number, sample: Float32Array, discrete: Float32Array, numTimesteps: number, noise: Float32Array): { prev: Float32Array; mean: Float32Array } {
  const idx = Math.trunc(f(t * (numTimesteps - 1)));
  const sigma = discrete[idx]!;
  const adjacent = idx === 0 ? 0 : discrete[idx - 1]!;
  const diffusion = f(Math.sqrt(f(f(sigma * sigma) - f(adjacent * adjacent))));
  const d2 = f(diffusion * diffusion);
  const mean = sample.map((x, k) => f(x - f(0 - f(d2 * score[k]!))));
  return { prev: mean.map((m, k) => f(m + f(diffusion * noise[k]!))), mean };
}

/** step_correct: one Langevin step with the step size set by snr and the batch-mean gradient/noise norms. */
export function scoreSdeVeStepCorrect(score: Float32Array, sample: Float32Array, snr: number, noise: Float32Array, batch = 1): Float32Array {
  const per = sample.length / batch;
  const meanNorm = (x: Float32Array) => {
    let total = 0;
    for (let b = 0; b < batch; b++) {
      let s = 0;
      for (let k = b * per; k < (b + 1) * per; k++) s += x[k]! * x[k]!;
      total += f(Math.sqrt(s));
    }
    return f(total / batch);
  };
  const gradNorm = meanNorm(score);
  const noiseNorm = meanNorm(noise);
  const r = f(f(f(snr) * noiseNorm) / gradNorm);
  const stepSize = f(f(r * r) * 2);
  const c = f(Math.sqrt(f(stepSize * 2)));
  return sample.map((x, k) => f(f(x + f(stepSize * score[k]!)) + f(c * noise[k]!)));
}

/** add_noise: original + noise * discrete_sigmas[index]. */
export function scoreSdeVeAddNoise(original: Float32Array, noise: Float32Array, sigma: number): Float32Array {
  return original.map((x, k) => f(x + f(noise[k]! * sigma)));
}

export class ScoreSdeVeScheduler extends VeOnVpScheduler {
  readonly name = 'ScoreSdeVeScheduler' as const;
  readonly order: number;
  private continuous: Float32Array = new Float32Array(0);
  private discrete: Float32Array = new Float32Array(0);
  private stepSigma: number[] = [];

  constructor(config: SchedulerConfig) {
    super(config);
    this.order = (config.correct_steps as number) + 1;
  }

  get sigmas(): number[] {
    return this.stepSigma.slice();
  }

  get initNoiseSigma(): number {
    return this.sigmaRange[1];
  }

  setTimesteps(n: number): void {
    const { timesteps, discrete } = scoreSdeVeTables(n, this.sigmaRange[0], this.sigmaRange[1], this.config.sampling_eps as number);
    this.continuous = timesteps;
    this.discrete = discrete;
    this.stepSigma = Array.from(timesteps, (t) => discrete[Math.trunc(f(t * (n - 1)))]!);
    // Evaluations [step, isPredictor]: correct_steps correctors, then the predictor, all at the step's sigma.
    this.resetEvals();
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < (this.config.correct_steps as number); c++) this.pushEval(i, false, this.stepSigma[i]!);
      this.pushEval(i, true, this.stepSigma[i]!);
    }
  }

  protected evalSigma(e: number): number {
    return this.stepSigma[this.evals[e]![0]]!;
  }

  step(eps: Float32Array, timestep: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    const e = this.currentEval(timestep);
    const [i, predictor] = this.evals[e]!;
    const sigma = this.stepSigma[i]!;
    const score = eps.map((v) => f(-v / sigma));
    const g: TorchGenerator = requireGenerator(opts, this.name);
    const noise = g.randn([sample.length]);
    this.evalIndex = e + 1;
    if (!predictor) return scoreSdeVeStepCorrect(score, sample, this.config.snr as number, noise, opts.batchSize ?? 1);
    const r = scoreSdeVeStepPred(score, this.continuous[i]!, sample, this.discrete, this.continuous.length, noise);
    return i === this.continuous.length - 1 ? r.mean : r.prev;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return scoreSdeVeAddNoise(original, noise, this.evalSigma(this.startEval(timestep)));
  }
}
