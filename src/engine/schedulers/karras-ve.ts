// KarrasVeScheduler. diffusers' class (deprecated) is the stochastic sampler of Karras et al. (2022),
// Algorithm 2, for variance-exploding models: churn noise in (add_noise_to_input), an Euler step (step) and
// a Heun correction (step_correct). The primitives below equal diffusers' on the same inputs.
//
// SD models are variance-preserving, so as a sampler we run Algorithm 2 on the VP model viewed as a VE
// denoiser: x_ve = x_vp * sqrt(sigma^2 + 1), D(x; sigma) = x - sigma * eps(x / sqrt(sigma^2+1), t(sigma)),
// with the EDM rho=7 sigma steps clamped to the model's trained sigma range and t(sigma) the fractional
// training timestep of sigma. In diffusers' step convention the model output is -eps (its derivative is
// (x - x0)/sigma = eps). Each step i evaluates at sigma_hat_i (predictor) and, unless sigma_{i+1} = 0, at
// sigma_{i+1} (corrector), so the timestep list interleaves like Heun's and `order` is 2. The churn noise
// of step i+1 is added at the end of step i (from the request's generator); the first step's churn is
// folded into initNoiseSigma (same distribution: N(0, sigma_0^2 + s_noise^2 (sigma_hat_0^2 - sigma_0^2))).
import { f, karrasSigmas, requireGenerator } from './common.ts';
import type { TorchGenerator } from '../random/torch-generator.ts';
import type { SchedulerConfig, StepOptions } from './types.ts';
import { VeOnVpScheduler } from './ve-base.ts';

export const KARRAS_VE_DEFAULTS = {
  sigma_min: 0.02,
  sigma_max: 100,
  s_noise: 1.007,
  s_churn: 80,
  s_min: 0.05,
  s_max: 50,
  // Not diffusers KarrasVe keys: the VP noise schedule of the model we sample (SD 1.5 by default).
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  trained_betas: null as number[] | null,
};

/** diffusers KarrasVeScheduler.set_timesteps' schedule (float32). */
export function karrasVeSchedule(config: SchedulerConfig, n: number): Float32Array {
  const smin = config.sigma_min as number;
  const smax = config.sigma_max as number;
  const base = f((smin * smin) / (smax * smax));
  const out = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const i = n - 1 - k; // the list runs over timesteps n-1 .. 0
    out[k] = f(f(smax * smax) * f(Math.pow(base, f(i / (n - 1)))));
  }
  return out;
}

/** add_noise_to_input: churn gamma, then sample + sqrt(sigma_hat^2 - sigma^2) * s_noise * randn. */
export function karrasVeAddNoiseToInput(config: SchedulerConfig, numSteps: number, sample: Float32Array, sigma: number, generator: TorchGenerator): { sampleHat: Float32Array; sigmaHat: number } {
  const gamma = (config.s_min as number) <= sigma && sigma <= (config.s_max as number) ? Math.min((config.s_churn as number) / numSteps, 2 ** 0.5 - 1) : 0;
  const sNoise = f(config.s_noise as number);
  const eps = generator.randn([sample.length]).map((r) => f(sNoise * r));
  const sigmaHat = sigma + gamma * sigma;
  const c = f(Math.sqrt(sigmaHat ** 2 - sigma ** 2));
  return { sampleHat: sample.map((x, k) => f(x + f(c * eps[k]!))), sigmaHat };
}

/** KarrasVeScheduler.step: Euler from sigma_hat to sigma_prev. */
export function karrasVeStep(modelOutput: Float32Array, sigmaHat: number, sigmaPrev: number, sampleHat: Float32Array): { prev: Float32Array; derivative: Float32Array } {
  const sh = f(sigmaHat);
  const dt = f(sigmaPrev - sigmaHat);
  const derivative = sampleHat.map((x, k) => f(f(x - f(x + f(sh * modelOutput[k]!))) / sh));
  return { prev: sampleHat.map((x, k) => f(x + f(dt * derivative[k]!))), derivative };
}

/** KarrasVeScheduler.step_correct: the Heun (trapezoid) correction at sigma_prev. */
export function karrasVeStepCorrect(modelOutput: Float32Array, sigmaHat: number, sigmaPrev: number, sampleHat: Float32Array, samplePrev: Float32Array, derivative: Float32Array): Float32Array {
  const sp = f(sigmaPrev);
  const dt = f(sigmaPrev - sigmaHat);
  return sampleHat.map((x, k) => {
    const xp = samplePrev[k]!;
    const dc = f(f(xp - f(xp + f(sp * modelOutput[k]!))) / sp);
    return f(x + f(dt * f(f(0.5 * derivative[k]!) + f(0.5 * dc))));
  });
}

interface KarrasStep {
  sigma: number;
  sigmaHat: number;
  next: number;
}

export class KarrasVeScheduler extends VeOnVpScheduler {
  readonly name = 'KarrasVeScheduler' as const;
  readonly order = 2;
  private plan: KarrasStep[] = [];
  private pending: { sampleHat: Float32Array; derivative: Float32Array } | null = null;

  get sigmas(): number[] {
    return this.plan.map((s) => f(s.sigma));
  }

  get initNoiseSigma(): number {
    const s = this.plan[0];
    if (!s) return this.sigmaRange[1];
    const sn = this.config.s_noise as number;
    return Math.sqrt(s.sigma ** 2 + sn * sn * (s.sigmaHat ** 2 - s.sigma ** 2));
  }

  setTimesteps(n: number): void {
    const [lo, hi] = this.sigmaRange;
    const sig = karrasSigmas([hi, lo], n, lo, hi);
    const gammaMax = Math.min((this.config.s_churn as number) / n, 2 ** 0.5 - 1);
    // Churn only where sigma_hat stays inside the model's trained range (EDM's S_tmax does this job).
    const sMax = Math.min(this.config.s_max as number, hi / (1 + gammaMax));
    this.plan = sig.map((s, i) => {
      const gamma = (this.config.s_min as number) <= s && s <= sMax ? gammaMax : 0;
      return { sigma: s, sigmaHat: s + gamma * s, next: i + 1 < n ? sig[i + 1]! : 0 };
    });
    // Evaluations [step, isCorrector]: the predictor at sigma_hat, then the corrector at the next sigma.
    this.resetEvals();
    this.plan.forEach((s, i) => {
      this.pushEval(i, false, s.sigmaHat);
      if (s.next !== 0) this.pushEval(i, true, s.next);
    });
    this.pending = null;
  }

  protected evalSigma(e: number): number {
    const [i, corrector] = this.evals[e]!;
    const s = this.plan[i]!;
    return corrector ? s.next : s.sigmaHat;
  }

  step(eps: Float32Array, timestep: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    const e = this.currentEval(timestep);
    const [i, corrector] = this.evals[e]!;
    const s = this.plan[i]!;
    const modelOutput = eps.map((v) => -v);
    let done: Float32Array | null = null;
    let out: Float32Array;
    if (!corrector) {
      const r = karrasVeStep(modelOutput, s.sigmaHat, s.next, sample);
      if (s.next === 0) done = r.prev;
      else this.pending = { sampleHat: sample, derivative: r.derivative };
      out = r.prev;
    } else {
      const p = this.pending!;
      done = karrasVeStepCorrect(modelOutput, s.sigmaHat, s.next, p.sampleHat, sample, p.derivative);
      this.pending = null;
      out = done;
    }
    this.evalIndex = e + 1;
    const nextStep = this.plan[i + 1];
    if (done && nextStep) {
      // Churn for the next step (Algorithm 2, lines 4-6), drawn as add_noise_to_input draws it.
      const g = requireGenerator(opts, this.name);
      const sn = f(this.config.s_noise as number);
      const noise = g.randn([done.length]).map((r) => f(sn * r));
      const c = f(Math.sqrt(nextStep.sigmaHat ** 2 - nextStep.sigma ** 2));
      out = done.map((x, k) => f(x + f(c * noise[k]!)));
    }
    return out;
  }

  /** img2img: the source latent noised to the (churned) level of the evaluation it starts at. */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const [i] = this.evals[this.startEval(timestep)]!;
    const s = this.plan[i]!;
    const sn = this.config.s_noise as number;
    const level = f(Math.sqrt(s.sigma ** 2 + sn * sn * (s.sigmaHat ** 2 - s.sigma ** 2)));
    return original.map((x, k) => f(x + f(level * noise[k]!)));
  }
}
