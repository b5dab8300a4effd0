// A validated request → the engine's options: images fetched/decoded at the output size, one hint per
// ControlNet (its own control_image entry, else the single control_image, else init_image).
import type { ControlUnit, GenerateOptions, RgbImage } from '../engine/pipeline/types.ts';
import type { GenerateRequest } from '../request/schema.ts';
import { loadImage, type ImageLimits } from '../inputs/image.ts';
import { roleOfField } from '../inputs/alpha.ts';
import type { RequestShape } from '../engine/pipeline/work.ts';

/** What decides a request's work, from the request alone (a queued job's eta; engine/pipeline/work.ts). */
export function requestShape(r: GenerateRequest): RequestShape {
  return {
    width: r.width, height: r.height, samples: r.samples, steps: r.num_inference_steps, guidanceScale: r.guidance_scale,
    strength: r.strength, scheduler: r.scheduler, useKarrasSigmas: r.use_karras_sigmas === 'yes', algorithmType: r.algorithm_type,
    hasInitImage: !!r.init_image, hasMaskImage: !!r.mask_image, controls: [...r.controlnet_model], autoHint: r.auto_hint === 'yes',
    guessMode: r.guess_mode === 'yes', tomesd: r.tomesd === 'yes', safetyChecker: r.safety_checker === 'yes', upscale: r.upscale,
  };
}

export async function engineOptions(r: GenerateRequest, limits: ImageLimits): Promise<GenerateOptions> {
  // The same source is fetched and decoded once even when several ControlNets share it.
  // The role (hint, init, mask) decides what transparency becomes, so it is part of the key.
  const cache = new Map<string, Promise<RgbImage>>();
  const load = (field: string, src: string) => {
    const key = `${roleOfField(field)}:${src}`;
    let p = cache.get(key);
    if (!p) cache.set(key, (p = loadImage(field, src, r.width, r.height, limits)));
    return p;
  };
  const initImage = r.init_image ? await load('init_image', r.init_image) : undefined;
  const maskImage = r.mask_image ? await load('mask_image', r.mask_image) : undefined;
  const controls: ControlUnit[] = [];
  for (let i = 0; i < r.controlnet_model.length; i++) {
    const image = await load(r.control_image ? 'control_image' : 'init_image', r.control_images[i]!);
    controls.push({ type: r.controlnet_model[i]!, image, scale: r.controlnet_conditioning_scale[i]! });
  }
  if (r.model_id === undefined || r.seed === undefined) throw new Error('model_id and seed must be resolved before the engine runs');
  return {
    modelId: r.model_id, prompt: r.prompt, negativePrompt: r.negative_prompt, promptWeighting: r.prompt_weighting === 'yes', controls,
    autoHint: r.auto_hint === 'yes', guessMode: r.guess_mode === 'yes', initImage, maskImage,
    width: r.width, height: r.height, samples: r.samples, scheduler: r.scheduler, steps: r.num_inference_steps,
    guidanceScale: r.guidance_scale, strength: r.strength, seed: r.seed, tomesd: r.tomesd === 'yes',
    useKarrasSigmas: r.use_karras_sigmas === 'yes', algorithmType: r.algorithm_type, vae: r.vae ?? null,
    loras: r.lora_model.map((id, i) => ({ id, strength: r.lora_strength[i] ?? 1 })), clipSkip: r.clip_skip,
    safetyChecker: r.safety_checker === 'yes', enhancePrompt: r.enhance_prompt === 'yes',
    multiLingual: r.multi_lingual === 'yes', upscale: r.upscale, safetyCheckerType: r.safety_checker_type,
  };
}
