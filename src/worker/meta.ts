// `meta` of the responses: every applied setting under the hosted API's names (SPEC "Responses").
import type { Applied, ExtraOutcome } from '../engine/pipeline/types.ts';
import type { GenerateRequest } from '../request/schema.ts';
import { clientMessage } from '../client-message.ts';

/** Echo URLs as sent; base64 inputs are summarised (echoing megabytes in every fetch would help no one). */
function echoImage(src: string | undefined): string | null {
  if (!src) return null;
  if (/^https?:\/\//i.test(src)) return src;
  return `<base64 image, ${src.length} characters>`;
}

const USER_TEXT = new Set(['prompt', 'negative_prompt']);

/**
 * Settings whose outcome only the engine knows: it reports them in `applied` (e.g. safety_checker "unavailable" when
 * no checker is installed, use_karras_sigmas "ignored" for a scheduler without Karras sigmas). Before it has run,
 * a requested one is "pending": meta never claims a check or a step that has not happened.
 */
const DECIDED_BY_ENGINE = ['safety_checker', 'enhance_prompt', 'multi_lingual', 'upscale', 'use_karras_sigmas', 'algorithm_type'] as const;

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
    negative_prompt: a.negativePrompt,
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
    prompt_weighting: a.promptWeighting ? 'yes' : 'no',
  };
  if (a.tokenizerNote) out.tokenizer = a.tokenizerNote;
  if (a.promptLanguage) out.prompt_language = a.promptLanguage;
  const nt = a.negativeTranslation;
  if (nt) {
    out.negative_prompt_language = nt.language;
    if (nt.status === 'ran') out.negative_prompt_note = nt.note;
    else if (nt.status === 'unavailable') out.negative_prompt_note = nt.reason;
  }
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

/**
 * The `meta` of a response. `applied` is the engine's report of what it did (success); without it (the request is
 * queued or running) the settings in DECIDED_BY_ENGINE that were asked for read "pending".
 */
export function buildMeta(req: GenerateRequest, filePrefix: string, applied?: Applied): Record<string, unknown> {
  const multi = req.controlnet_model.length > 1;
  const meta: Record<string, unknown> = {
    prompt: req.prompt,
    negative_prompt: req.negative_prompt,
    prompt_weighting: req.prompt_weighting,
    model_id: req.model_id,
    controlnet_model: req.controlnet_model.length ? req.controlnet_model.join(',') : null,
    controlnet_type: req.controlnet_type ?? null,
    scheduler: req.scheduler,
    W: req.width,
    H: req.height,
    steps: req.num_inference_steps,
    guidance_scale: req.guidance_scale,
    controlnet_conditioning_scale: multi ? req.controlnet_conditioning_scale : req.controlnet_conditioning_scale[0] ?? null,
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
    // the hosted API's words for the factors it documents (yes = 2, no = 1); 3 as the number
    upscale: req.upscale === 1 ? 'no' : req.upscale === 2 ? 'yes' : req.upscale,
    base64: req.base64,
    temp: req.temp,
    init_image: echoImage(req.init_image),
    control_image: Array.isArray(req.control_image) ? req.control_image.map(echoImage) : echoImage(req.control_image),
    mask_image: echoImage(req.mask_image),
    auto_hint: req.auto_hint,
    guess_mode: req.guess_mode,
    file_prefix: filePrefix,
  };
  if (!applied) {
    for (const k of DECIDED_BY_ENGINE) if (meta[k] !== 'no' && meta[k] !== 'none') meta[k] = 'pending';
    return meta;
  }
  // The engine reports what it really did (e.g. the prompt after enhancement, or a safety checker that could not
  // run); its word wins over the request's. Its notes never show a server path (the prompts it echoes are the
  // user's text and stay as they are).
  const clean = (k: string, v: unknown): unknown => (USER_TEXT.has(k) ? v : typeof v === 'string' ? clientMessage(v)
    : Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? clientMessage(x) : x)) : v);
  const notes = Object.fromEntries(Object.entries(appliedMeta(applied)).map(([k, v]) => [k, clean(k, v)]));
  return { ...meta, ...notes };
}
