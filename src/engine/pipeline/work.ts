// The work of a request in each phase that does not depend on which networks are loaded: prompt encoding,
// annotators, VAE encoding of the init image, the denoising steps (as the scheduler will run them), decoding,
// the safety check and upscaling. The engine's plan (plan.ts) puts the networks' builds and loads between
// these; a queued job's eta (api/job-answer.ts) sums them from the request alone, before any model is opened.
import { createScheduler, img2imgStart } from '../schedulers/index.ts';
import { denoisingMode } from '../schedulers/step-plan.ts';
import { stepUnits, type PlannedWork } from './phases.ts';
import type { ControlNetType, SchedulerName, AlgorithmType } from './types.ts';

/** What decides a request's work (GenerateOptions and GenerateRequest both map onto it). */
export interface RequestShape {
  width: number;
  height: number;
  samples: number;
  steps: number;
  guidanceScale: number;
  strength: number;
  scheduler: SchedulerName;
  useKarrasSigmas: boolean;
  algorithmType: AlgorithmType;
  hasInitImage: boolean;
  hasMaskImage: boolean;
  controls: ControlNetType[];
  autoHint: boolean;
  guessMode: boolean;
  /** Token merging in the UNet: its steps have their own rate (key "tome"). */
  tomesd: boolean;
  safetyChecker: boolean;
  upscale: 1 | 2 | 3;
  /** The base model's UNet takes 9 channels (an inpainting model); unknown before the model is opened: false. */
  inpaintUnet?: boolean;
}

/** A request's work by stage, in the order the pipeline runs them (networks' builds and loads go between). */
export interface RequestWork {
  encode: PlannedWork;
  /** One per ControlNet: its annotator's work (auto_hint), or undefined when its hint is used as sent. */
  annotate: (PlannedWork | undefined)[];
  /** VAE encodings of the init image (img2img, inpaint, inversion), run after the UNet is loaded. */
  vaeEncode: PlannedWork[];
  steps: PlannedWork[];
  decode: PlannedWork;
  /** The safety check and upscale, after decoding. */
  after: PlannedWork[];
}

/**
 * Denoising steps the request runs: model evaluations per sample as the scheduler lists them (a second-order
 * scheduler's pairs count twice, as its progress does), the img2img tail that `strength` keeps, inversion and
 * regeneration both for DDIMInverseScheduler. `schedulerConfig`: the model's scheduler_config.json ({} =
 * diffusers' defaults).
 */
export function plannedSteps(s: RequestShape, schedulerConfig: Record<string, unknown>): number {
  const mode = denoisingMode({ scheduler: s.scheduler, hasInitImage: s.hasInitImage, hasMaskImage: s.hasMaskImage, strength: s.strength });
  if (mode === 'ddim_inversion') return 2 * Math.min(Math.trunc(s.steps * s.strength), s.steps);
  const sched = createScheduler(s.scheduler, schedulerConfig as never, { useKarrasSigmas: s.useKarrasSigmas, algorithmType: s.algorithmType });
  sched.setTimesteps(s.steps);
  if (mode === 'txt2img') return sched.timesteps.length;
  try {
    return img2imgStart(sched, s.steps, s.strength).timesteps.length;
  } catch {
    return 0; // the run rejects this strength itself
  }
}

/** The work `s` does outside network builds and loads, in phases.ts units. */
export function requestWork(s: RequestShape, schedulerConfig: Record<string, unknown> = {}): RequestWork {
  const mode = denoisingMode({ scheduler: s.scheduler, hasInitImage: s.hasInitImage, hasMaskImage: s.hasMaskImage, strength: s.strength });
  const cfg = s.guidanceScale > 1;
  const mp = (s.width * s.height) / 1e6;
  const annotate = s.controls.map((type) => (s.autoHint && !(type === 'inpaint' && s.hasMaskImage) ? { phase: 'annotate' as const, units: mp, key: type } : undefined));
  // the init image is encoded once (repeated for the samples); a 9-channel inpainting UNet also encodes the
  // masked image, and skips the init image at strength 1
  const encodes = mode === 'txt2img' ? 0 : mode === 'inpaint' && s.inpaintUnet ? (s.strength === 1 ? 1 : 2) : 1;
  const vaeEncode = Array.from({ length: encodes }, () => ({ phase: 'vae_encode' as const, units: mp }));
  const n = plannedSteps(s, schedulerConfig);
  const shape = { width: s.width, height: s.height, samples: s.samples, controls: s.controls.length, guessMode: s.guessMode };
  const steps: PlannedWork[] = [];
  for (let i = 0; i < n; i++) {
    // DDIM inversion runs its first half without CFG (it inverts the init image with the prompt alone)
    const withCfg = cfg && !(mode === 'ddim_inversion' && i < n / 2);
    steps.push({ phase: 'step', units: stepUnits({ ...shape, cfg: withCfg }), key: stepKey(s.tomesd) });
  }
  const after: PlannedWork[] = [];
  if (s.safetyChecker) after.push({ phase: 'safety_check', units: mp * s.samples });
  if (s.upscale !== 1) after.push({ phase: 'upscale', units: mp * s.samples, key: `x${s.upscale}` });
  return { encode: { phase: 'encode', units: 1 }, annotate, vaeEncode, steps, decode: { phase: 'decode', units: mp * s.samples }, after };
}

/** The rate key of a denoising step: ToMe's steps are cheaper than plain ones (tomesd on). */
export function stepKey(tomesd: boolean): string | undefined {
  return tomesd ? 'tome' : undefined;
}

/** All of a request's work outside builds and loads, in the order it runs. */
export function flatWork(w: RequestWork): PlannedWork[] {
  return [w.encode, ...w.annotate.filter((a): a is PlannedWork => !!a), ...w.vaeEncode, ...w.steps, w.decode, ...w.after];
}
