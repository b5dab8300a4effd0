// DDIMInverseScheduler: the DDIM update run backwards (x_t -> x_{t+1}), which maps an image latent to the
// noise that DDIM would turn back into it. Our API uses it for "invert, then regenerate" edits:
// ddimInvertThenRegenerate() inverts the init latents with this scheduler and denoises them again with
// DDIMScheduler under the request's prompt and control, keeping the source's layout.
import { AlphaScheduler } from './alpha-base.ts';
import { BETA_DEFAULTS, clampArray, f, npArange, resolveConfig, roundHalfEven } from './common.ts';
import { DDIM_DEFAULTS, DDIMScheduler } from './ddim.ts';
import type { SchedulerConfig } from './types.ts';

export const DDIM_INVERSE_DEFAULTS = {
  ...BETA_DEFAULTS,
  clip_sample: true as boolean,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: 'epsilon',
  clip_sample_range: 1.0,
  timestep_spacing: 'leading',
  rescale_betas_zero_snr: false,
};

export class DDIMInverseScheduler extends AlphaScheduler {
  readonly name = 'DDIMInverseScheduler' as const;

  constructor(config: SchedulerConfig) {
    super(config);
    const T = config.num_train_timesteps as number;
    this.timesteps = Array.from({ length: T }, (_, i) => i);
  }

  /** Ascending timesteps (the DDIM ones reversed). */
  setTimesteps(n: number): void {
    this.checkSteps(n);
    this.numInferenceSteps = n;
    const T = this.config.num_train_timesteps as number;
    if (this.config.timestep_spacing === 'leading') {
      const ratio = Math.floor(T / n);
      this.timesteps = npArange(0, n, 1).map((i) => i * ratio + (this.config.steps_offset as number));
    } else if (this.config.timestep_spacing === 'trailing') {
      this.timesteps = npArange(T, 0, -T / n).reverse().map((v) => roundHalfEven(v) - 1);
    } else {
      throw new Error(`${String(this.config.timestep_spacing)} is not supported. Please make sure to choose one of 'leading' or 'trailing'.`);
    }
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const T = this.config.num_train_timesteps as number;
    const prevT = timestep; // the noisier target
    const t = Math.min(timestep - Math.floor(T / this.numInferenceSteps), T - 1);
    const a = this.alphaProdAt(t);
    const ap = this.alphasCumprod[prevT]!;
    const { x0: raw, eps } = this.x0AndEps(modelOutput, sample, a);
    const x0 = this.config.clip_sample ? clampArray(raw, this.config.clip_sample_range as number) : raw;
    const cd = f(Math.sqrt(f(1 - ap)));
    const cx = f(Math.sqrt(ap));
    return x0.map((v, k) => f(f(cx * v) + f(cd * eps[k]!)));
  }
}

/** Noise prediction for a latent at a timestep; `phase` lets the caller condition inversion differently. */
export type EpsModel = (latents: Float32Array, timestep: number, phase: 'invert' | 'generate') => Promise<Float32Array>;

/**
 * DDIM inversion followed by DDIM regeneration (Song et al. 2020, sec. 4.3; Mokady et al. 2023): the init
 * latents are pushed to noise along the deterministic DDIM ODE by DDIMInverseScheduler, then DDIM (eta 0)
 * denoises that noise with the same number of steps. With the same model in both phases the result
 * reconstructs the input up to discretisation error; with a new prompt/control it edits while keeping
 * the layout. `strength` < 1 inverts only the first fraction of the schedule, like img2img.
 */
export async function ddimInvertThenRegenerate(
  model: EpsModel,
  initLatents: Float32Array,
  config: SchedulerConfig,
  steps: number,
  strength = 1,
  onStep?: (done: number, total: number) => void,
): Promise<Float32Array> {
  const inverse = new DDIMInverseScheduler(resolveConfig(DDIM_INVERSE_DEFAULTS, config));
  const forward = new DDIMScheduler(resolveConfig(DDIM_DEFAULTS, config));
  inverse.setTimesteps(steps);
  forward.setTimesteps(steps);
  const used = Math.min(Math.trunc(steps * strength), steps);
  if (used < 1) return initLatents.slice();
  const total = 2 * used;
  let x = initLatents;
  // Inversion walks the ascending schedule; regeneration walks the same timesteps back down.
  const up = inverse.timesteps.slice(0, used);
  let done = 0;
  for (const t of up) {
    x = inverse.step(await model(x, t, 'invert'), t, x);
    onStep?.(++done, total);
  }
  const down = forward.timesteps.slice(steps - used);
  for (const t of down) {
    x = forward.step(await model(x, t, 'generate'), t, x);
    onStep?.(++done, total);
  }
  return x;
}
