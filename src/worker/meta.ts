// `meta` of the responses: every applied setting under the hosted API's names (SPEC "Responses").
import type { GenerateRequest } from '../request/schema.ts';
import { clientMessage } from '../client-message.ts';

/** Echo URLs as sent; base64 inputs are summarised (echoing megabytes in every fetch would help no one). */
function echoImage(src: string | undefined): string | null {
  if (!src) return null;
  if (/^https?:\/\//i.test(src)) return src;
  return `<base64 image, ${src.length} characters>`;
}

const USER_TEXT = new Set(['prompt', 'negative_prompt']);

export function buildMeta(req: GenerateRequest, filePrefix: string, applied: Record<string, unknown> = {}): Record<string, unknown> {
  const multi = req.controlnet_model.length > 1;
  const meta: Record<string, unknown> = {
    prompt: req.prompt,
    negative_prompt: req.negative_prompt,
    prompt_weighting: req.prompt_weighting,
    model_id: req.model_id,
    controlnet_model: req.controlnet_model.join(','),
    controlnet_type: req.controlnet_type,
    scheduler: req.scheduler,
    W: req.width,
    H: req.height,
    steps: req.num_inference_steps,
    guidance_scale: req.guidance_scale,
    controlnet_conditioning_scale: multi ? req.controlnet_conditioning_scale : req.controlnet_conditioning_scale[0],
    strength: req.strength,
    seed: req.seed,
    n_samples: req.samples,
    lora: req.lora_model.length ? req.lora_model.join(',') : null,
    lora_strength: req.lora_strength.length ? req.lora_strength.join(',') : null,
    vae: req.vae ?? null,
    clip_skip: req.clip_skip,
    tomesd: req.tomesd,
    use_karras_sigmas: req.use_karras_sigmas,
    algorithm_type: req.algorithm_type,
    safety_checker: req.safety_checker,
    enhance_prompt: req.enhance_prompt,
    multi_lingual: req.multi_lingual,
    upscale: req.upscale,
    base64: req.base64,
    temp: req.temp,
    init_image: echoImage(req.init_image),
    control_image: Array.isArray(req.control_image) ? req.control_image.map(echoImage) : echoImage(req.control_image),
    mask_image: echoImage(req.mask_image),
    auto_hint: req.auto_hint,
    guess_mode: req.guess_mode,
    file_prefix: filePrefix,
  };
  // The engine reports what it really did under the same names (e.g. the prompt after enhancement, or
  // safety_checker: "unavailable"); its word wins over the request's. Its notes never show a server path (the
  // prompts it echoes are the user's text and stay as they are).
  const clean = (k: string, v: unknown): unknown => (USER_TEXT.has(k) ? v : typeof v === 'string' ? clientMessage(v)
    : Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? clientMessage(x) : x)) : v);
  const notes = Object.fromEntries(Object.entries(applied).map(([k, v]) => [k, clean(k, v)]));
  return { ...meta, ...notes };
}
