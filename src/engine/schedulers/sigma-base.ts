// Shared state machine of the k-diffusion style schedulers (Euler, Euler ancestral, LMS, Heun, KDPM2,
// KDPM2 ancestral): a float32 sigma table, a step index found from the first timestep (or set by
// setBeginIndex), input scaling by 1/sqrt(sigma^2+1) and add_noise = x + noise*sigma.
import { SigmaTableScheduler } from './base.ts';
import { f, interpIndex, karrasSigmas, logF32Array, sigmaToT, spacedTimesteps } from './common.ts';

export abstract class SigmaScheduler extends SigmaTableScheduler {
  get initNoiseSigma(): number {
    let max = 0;
    for (const s of this.sigmaTable) max = Math.max(max, s);
    if (this.config.timestep_spacing === 'linspace' || this.config.timestep_spacing === 'trailing') return max;
    return f(Math.sqrt(f(f(max * max) + 1)));
  }

  /** The sigma the model input is scaled with (Heun/KDPM2 override it for their second stage). */
  protected inputSigma(index: number): number {
    return this.sigmaTable[index]!;
  }

  override scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const i = this.initStepIndex(timestep);
    const sigma = this.inputSigma(i);
    const d = f(Math.sqrt(f(f(sigma * sigma) + 1)));
    return sample.map((x) => f(x / d));
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const sigma = this.sigmaTable[this.noiseIndex(timestep)]!;
    return original.map((x, i) => f(x + f(noise[i]! * sigma)));
  }

  /** The table diffusers holds before set_timesteps (training sigmas descending, then 0), so initNoiseSigma works right away. */
  protected trainingSigmaTable(): Float32Array {
    return Float32Array.from([...this.trainSigmas].reverse().concat([0]));
  }

  /** Timesteps by spacing (float32 like np.float32 arrays) and the interpolated training sigmas (doubles). */
  protected baseSchedule(n: number): { timesteps: number[]; sigmas: number[]; logSigmas: Float32Array } {
    const timesteps = spacedTimesteps(this.config, n, false).map(f);
    const sigmas = timesteps.map((t) => interpIndex(t, this.trainSigmas));
    return { timesteps, sigmas, logSigmas: logF32Array(this.trainSigmas) };
  }

  /** baseSchedule, with Karras sigmas and their fractional timesteps instead where use_karras_sigmas is on. */
  protected sigmaSchedule(n: number): { timesteps: number[]; sigmas: number[]; logSigmas: Float32Array } {
    const base = this.baseSchedule(n);
    if (!this.config.use_karras_sigmas) return base;
    const sigmas = karrasSigmas(base.sigmas, n, this.config.sigma_min as number | null | undefined, this.config.sigma_max as number | null | undefined);
    return { sigmas, timesteps: sigmas.map((s) => sigmaToT(s, base.logSigmas)), logSigmas: base.logSigmas };
  }

  /** x0 from the model output at noise level sigma (epsilon / v_prediction / sample), in float32 ops. */
  protected predictOriginal(modelOutput: Float32Array, sample: Float32Array, sigma: number): Float32Array {
    const p = this.config.prediction_type;
    if (p === 'epsilon') return sample.map((x, i) => f(x - f(sigma * modelOutput[i]!)));
    if (p === 'v_prediction') {
      const s2 = f(f(sigma * sigma) + 1);
      const c = f(-sigma / f(Math.sqrt(s2)));
      return sample.map((x, i) => f(f(modelOutput[i]! * c) + f(x / s2)));
    }
    if (p === 'sample' || p === 'original_sample') return modelOutput.slice();
    throw new Error(`prediction_type given as ${String(p)} must be one of \`epsilon\`, or \`v_prediction\``);
  }
}

/**
 * diffusers' cat([x[:1], x[1:end].repeat_interleave(2), x[-1:]]), how Heun and KDPM2 lay out their tables
 * per model call: end is the last entry for Heun ([a, b,b, ..., y,y, z]) and past it for KDPM2 with
 * `doubleLast` ([a, b,b, ..., z,z, z]).
 */
export function interleaveMiddle(values: ArrayLike<number>, doubleLast: boolean): Float32Array {
  const out = [values[0]!];
  const end = doubleLast ? values.length : values.length - 1;
  for (let i = 1; i < end; i++) out.push(values[i]!, values[i]!);
  out.push(values[values.length - 1]!);
  return Float32Array.from(out);
}

/** base + d dt with k-diffusion's derivative d = (x - x0) / sigma, in float32 (base is x for a plain Euler step). */
export function eulerStep(base: Float32Array, x: Float32Array, x0: Float32Array, sigma: number, dt: number): Float32Array {
  return base.map((b, k) => f(b + f(f(f(x[k]! - x0[k]!) / sigma) * dt)));
}

/** k-diffusion's get_ancestral_step (eta 1) in float32: sigma_up, the fresh noise, and sigma_down, the Euler target. */
export function ancestralStep(sigmaFrom: number, sigmaTo: number): { up: number; down: number } {
  const from2 = f(sigmaFrom * sigmaFrom);
  const to2 = f(sigmaTo * sigmaTo);
  const up = f(Math.sqrt(f(f(to2 * f(from2 - to2)) / from2)));
  return { up, down: f(Math.sqrt(f(to2 - f(up * up)))) };
}
