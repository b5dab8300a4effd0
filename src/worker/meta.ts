// `meta` of the responses: every applied setting under the hosted API's names (SPEC "Responses").
import type { Applied, ExtraOutcome } from '../engine/pipeline/types.ts';
import type { GenerateRequest } from '../request/schema.ts';

/** Echo URLs as sent; base64 inputs are summarised (echoing megabytes in every fetch would help no one). */
function echoImage(src: string | undefined): string | null {
  if (!src) return null;
  if (/^https?:\/\//i.test(src)) return src;
  return `<base64 image, ${src.length} characters>`;
}

/** An extra's outcome as the hosted API says it: "yes" (ran), "no" (not asked for), "unavailable" (asked, could not run). */
function yesNo(x: ExtraOutcome): 'yes' | 'no' | 'unavailable' {
  return x.status === 'ran' ? 'yes' : x.status === 'off' ? 'no' : 'unavailable';
}

/**
 * The engine's account of a request (its own names) as meta keys: the hosted API's keys with the values that
 * actually applied, plus this server's notes (mode, steps_run, lora_ignored, auto_hint_<type>, *_note).
 */
export function appliedMeta(a: Applied): Record<string, unknown> {
  const out: Record<string, unknown> = {
    prompt: a.prompt,
    use_karras_sigmas: a.karrasSigmas === 'applied' ? 'yes' : a.karrasSigmas === 'off' ? 'no' : 'ignored',
    algorithm_type: a.algorithmType,
    tomesd: a.tome ? 'yes' : 'no',
    guess_mode: a.guessMode ? 'yes' : 'no',
    safety_checker: yesNo(a.safetyChecker),
    upscale: yesNo(a.upscale),
    multi_lingual: yesNo(a.translation),
    enhance_prompt: yesNo(a.promptEnhancement),
    mode: a.mode,
    steps_run: a.stepsRun,
  };
  if (a.promptLanguage) out.prompt_language = a.promptLanguage;
  if (a.loraIgnored.length) out.lora_ignored = a.loraIgnored;
  if (a.loraUnmatched.length) out.lora_unmatched = a.loraUnmatched;
  for (const [type, note] of Object.entries(a.annotatorNotes)) out[`auto_hint_${type}`] = note;
  const notes: [string, ExtraOutcome][] = [['safety_checker', a.safetyChecker], ['upscale', a.upscale], ['multi_lingual', a.translation], ['enhance_prompt', a.promptEnhancement]];
  for (const [key, x] of notes) {
    if (x.status === 'unavailable') out[`${key}_note`] = x.reason;
    else if (x.status === 'ran') for (const [k, v] of Object.entries(x)) if (k !== 'status') out[`${key}_${k}`] = v;
  }
  return out;
}

export function buildMeta(req: GenerateRequest, filePrefix: string, applied?: Applied): Record<string, unknown> {
  const multi = req.controlnet_model.length > 1;
  const meta: Record<string, unknown> = {
    prompt: req.prompt,
    negative_prompt: req.negative_prompt,
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
  // The engine reports what it really did (e.g. the prompt after enhancement, or a safety checker that could not
  // run); its word wins over the request's.
  return applied ? { ...meta, ...appliedMeta(applied) } : meta;
}
