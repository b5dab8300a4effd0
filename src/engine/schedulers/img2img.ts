// Image-to-image start point, as diffusers' img2img pipelines compute it (get_timesteps + set_begin_index).
import type { Scheduler } from './types.ts';

export interface Img2ImgStart {
  /** The timesteps still to run (each one model call). */
  timesteps: number[];
  /** Denoising steps that remain (num_inference_steps - t_start). */
  numSteps: number;
  /** The timestep the init latents are noised to (addNoise(init, noise, latentTimestep)). */
  latentTimestep: number;
}

/**
 * init_timestep = min(int(steps * strength), steps); t_start = max(steps - init_timestep, 0); the schedule
 * continues at timesteps[t_start * order] and the scheduler's begin index is set there. Call after
 * setTimesteps(steps).
 */
export function img2imgStart(scheduler: Scheduler, steps: number, strength: number): Img2ImgStart {
  if (!(strength >= 0 && strength <= 1)) throw new RangeError(`strength must be in [0, 1], got ${strength}`);
  const initTimestep = Math.min(Math.trunc(steps * strength), steps);
  const tStart = Math.max(steps - initTimestep, 0);
  const timesteps = scheduler.timesteps.slice(tStart * scheduler.order);
  const numSteps = steps - tStart;
  if (timesteps.length === 0 || numSteps < 1) {
    throw new RangeError(`After adjusting the num_inference_steps by strength parameter: ${strength}, the number of pipeline steps is ${numSteps} which is < 1 and not appropriate for this pipeline.`);
  }
  scheduler.setBeginIndex(tStart * scheduler.order);
  return { timesteps, numSteps, latentTimestep: timesteps[0]! };
}
