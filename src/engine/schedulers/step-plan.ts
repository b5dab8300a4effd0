// How many denoising steps a request runs, and the rules that refuse a plan that cannot give a real image:
// (1) a plan that runs zero steps (img2img / inpaint / DDIM inversion with int(steps × strength) = 0), and
// (2) fewer steps than the scheduler needs (IPNDM's 1-step schedule zeroes the latents; DDIM's 1-step
// "leading" schedule is the single timestep 1, so the noise is returned as it is; Heun-type and ancestral
// second-order samplers blow the noise up at 2 steps). Both are checked when a request is validated (400 before
// it is queued) and again by the engine, from this one module.

import type { SchedulerName } from '../pipeline/types.ts';

/** The four ways the pipeline runs, as it chooses them. */
export type DenoisingMode = 'txt2img' | 'img2img' | 'inpaint' | 'ddim_inversion';

/** The pipeline's choice: DDIMInverseScheduler inverts; a mask with an init image inpaints; an init image with strength < 1 is img2img. */
export function denoisingMode(o: { scheduler: SchedulerName; hasInitImage: boolean; hasMaskImage: boolean; strength: number }): DenoisingMode {
  if (o.scheduler === 'DDIMInverseScheduler') return 'ddim_inversion';
  if (o.hasInitImage && o.hasMaskImage) return 'inpaint';
  if (o.hasInitImage && o.strength < 1) return 'img2img';
  return 'txt2img';
}

/**
 * Denoising steps that run (model evaluations per sample, counting an order-2 pair once): all of them for
 * txt2img; diffusers' get_timesteps count min(int(steps × strength), steps) for img2img and inpaint; the same
 * count of inversion steps (each followed by as many regeneration steps) for DDIM inversion.
 */
export function stepsRun(mode: DenoisingMode, steps: number, strength: number): number {
  if (mode === 'txt2img') return steps;
  return Math.min(Math.trunc(steps * strength), steps);
}

/**
 * The fewest num_inference_steps with which each scheduler gives a real image, for every count from there up
 * to 50, with the SD 1.x scheduler config (its default timestep spacing; a model whose config asks for
 * "trailing" spacing could do with fewer, and still gets these minimums). Measured (tests/engine/schedulers/step-plan.test.ts) on the exact denoiser of Gaussian data on SD's
 * schedule: a count passes when the output follows the model (the output mean moves by at least half as much
 * as with 30 steps when the data mean moves) and the leftover noise is not amplified (output std ≤ 4 × the
 * data's). Where use_karras_sigmas changes the answer the two values are given.
 */
const MINIMUM_STEPS: Record<SchedulerName, number | { karras: number; plain: number }> = {
  DDPMScheduler: 2, // 1 step: "leading" spacing gives the single timestep 1, the noise comes back as it is
  DDIMScheduler: 2, // the same
  PNDMScheduler: 2, // 1 step: an empty schedule (its PLMS warm-up needs more), no step runs
  LMSDiscreteScheduler: 2, // 1 step: "linspace" spacing gives the single timestep 0, so the start latents are
  EulerDiscreteScheduler: 2, // sigma_min × noise ≈ 0 and the image is flat grey
  EulerAncestralDiscreteScheduler: 2,
  DPMSolverMultistepScheduler: 1,
  HeunDiscreteScheduler: 3, // 2 steps amplify the noise ~15x
  KDPM2DiscreteScheduler: 3,
  DPMSolverSinglestepScheduler: 1,
  KDPM2AncestralDiscreteScheduler: 4,
  UniPCMultistepScheduler: 1,
  DDIMInverseScheduler: 2, // inverting 1 step goes up to t = 1 only: the init image comes back unchanged
  // (its regeneration is DDIM's, so a plan also needs 2 inversion steps: int(steps × strength) ≥ 2)
  DEISMultistepScheduler: { karras: 2, plain: 1 },
  IPNDMScheduler: 2, // its 1-step schedule (betas [1, 0]) zeroes the latents: a uniform grey image
  KarrasVeScheduler: 3, // 2 steps amplify the noise
  ScoreSdeVeScheduler: 4,
  LCMScheduler: 1,
};

/** The fewest num_inference_steps `name` needs for a real image (see MINIMUM_STEPS). */
export function minimumSteps(name: SchedulerName, useKarrasSigmas = false): number {
  const m = MINIMUM_STEPS[name];
  return typeof m === 'number' ? m : useKarrasSigmas ? m.karras : m.plain;
}

export interface StepPlan {
  scheduler: SchedulerName;
  mode: DenoisingMode;
  steps: number;
  strength: number;
  useKarrasSigmas: boolean;
}

/** The request field a broken plan is about and the message naming the rule, or undefined for a plan that can run. */
export function stepPlanProblem(p: StepPlan): { field: 'num_inference_steps' | 'strength'; message: string } | undefined {
  const min = minimumSteps(p.scheduler, p.useKarrasSigmas);
  if (p.steps < min) {
    return {
      field: 'num_inference_steps',
      message: `num_inference_steps must be at least ${min} for ${p.scheduler}${p.useKarrasSigmas && typeof MINIMUM_STEPS[p.scheduler] !== 'number' ? ' with use_karras_sigmas' : ''} (with fewer it gives no real image)`,
    };
  }
  if (p.mode === 'txt2img') return undefined;
  const run = stepsRun(p.mode, p.steps, p.strength);
  // an inversion runs as many steps up as down: it needs the scheduler's minimum of them, like a schedule
  const need = p.mode === 'ddim_inversion' ? min : 1;
  if (run < need) {
    const what = p.mode === 'ddim_inversion' ? 'DDIM inversion' : p.mode;
    return {
      field: 'strength',
      message: `strength ${p.strength} with num_inference_steps ${p.steps} runs ${run} ${what} step${run === 1 ? '' : 's'} `
        + `(int(num_inference_steps × strength)); it needs at least ${need}: raise strength or num_inference_steps`,
    };
  }
  return undefined;
}
