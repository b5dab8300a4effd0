// The ONE request schema of the generate endpoints: each field once, with its type, coercion (numeric strings
// and null, as clients of the hosted API send them), default, limits and error text. It drives validation,
// the OpenAPI document (/docs) and the playground form.
import { z } from 'zod';
import { CONTROLNET_TYPES, SCHEDULER_NAMES, ALGORITHM_TYPES } from '../engine/pipeline/types.ts';

const MAX_SEED = 2 ** 32 - 1;
const MAX_TEXT = 20_000;
/** Inputs may be base64: a 20 MB image is ~27 MB of base64. */
const MAX_IMAGE_TEXT = 28 * 1024 * 1024;

/** null and "" mean "unset"; numeric strings become numbers; anything else is left for the check to refuse. */
function toNumber(v: unknown): unknown {
  if (v === null || v === '') return undefined;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return v;
}

function toYesNo(v: unknown): unknown {
  if (v === null || v === '') return undefined;
  if (v === true) return 'yes';
  if (v === false) return 'no';
  return typeof v === 'string' ? v.trim().toLowerCase() : v;
}

function toOptionalString(v: unknown): unknown {
  if (v === null || v === '') return undefined;
  return typeof v === 'number' ? String(v) : v;
}

/** "a,b" or ["a","b"] → trimmed, non-empty items. */
function toList(v: unknown): unknown {
  if (v === null || v === '' || v === undefined) return undefined;
  if (typeof v === 'number') return [String(v)];
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  if (Array.isArray(v)) return v.map((s) => (typeof s === 'number' ? String(s) : typeof s === 'string' ? s.trim() : s));
  return v;
}

function intRule(name: string, min: number, max: number) {
  const msg = `${name} must be an integer between ${min} and ${max}`;
  return z.number({ error: msg }).int({ error: msg }).min(min, { error: msg }).max(max, { error: msg });
}

function int(name: string, min: number, max: number, def: number) {
  return z.preprocess(toNumber, intRule(name, min, max).default(def));
}

function num(name: string, min: number, max: number, def: number) {
  const msg = `${name} must be a number between ${min} and ${max}`;
  return z.preprocess(toNumber, z.number({ error: msg }).min(min, { error: msg }).max(max, { error: msg }).default(def));
}

function yesNo(name: string, def: 'yes' | 'no') {
  return z.preprocess(toYesNo, z.enum(['yes', 'no'], { error: `${name} must be "yes" or "no"` }).default(def));
}

function text(name: string, def: string, max = MAX_TEXT) {
  const msg = `${name} must be a string of at most ${max} characters`;
  return z.preprocess(toOptionalString, z.string({ error: msg }).max(max, { error: msg }).default(def));
}

const size = (name: string) => {
  const msg = `${name} must be a multiple of 8 between 64 and 1024`;
  return z.preprocess(toNumber, z.number({ error: msg }).int({ error: msg }).min(64, { error: msg }).max(1024, { error: msg })
    .multipleOf(8, { error: msg }).default(512));
};

const typeListMsg = `controlnet_model must be a comma list of: ${CONTROLNET_TYPES.join(', ')}`;
const imageMsg = (name: string) => `${name} must be an image URL (http/https), a data URL or base64`;
const image = (name: string) =>
  z.preprocess((v) => (v === null || v === '' ? undefined : v), z.string({ error: imageMsg(name) }).min(1, { error: imageMsg(name) })
    .max(MAX_IMAGE_TEXT, { error: `${name} is too large` }).optional());

const scaleMsg = 'controlnet_conditioning_scale must be a number between 0 and 5, or a comma list of them, one per ControlNet';
const scaleItem = z.preprocess(toNumber, z.number({ error: scaleMsg }).min(0, { error: scaleMsg }).max(5, { error: scaleMsg }));
const loraStrengthMsg = 'lora_strength must be a number between 0.1 and 1, or a comma list of them, one per LoRA';
const loraStrengthItem = z.preprocess(toNumber, z.number({ error: loraStrengthMsg }).min(0.1, { error: loraStrengthMsg }).max(1, { error: loraStrengthMsg }));
const idMsg = (name: string) => `${name} must be a comma list of model ids (letters, digits, . _ - /)`;
const modelId = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;

export const requestSchema = z.object({
  key: z.string().optional().meta({ description: 'API key (or send it as Authorization: Bearer)' }),
  model_id: z.preprocess(toOptionalString, z.string({ error: 'model_id must be a model id' })
    .regex(modelId, { error: 'model_id must be a model id (letters, digits, . _ - /, at most 128 characters)' }).optional())
    .meta({ description: "base model; default: the server's default model" }),
  controlnet_model: z.preprocess(toList, z.array(z.enum(CONTROLNET_TYPES, { error: typeListMsg }), { error: typeListMsg })
    .min(1, { error: typeListMsg }).max(CONTROLNET_TYPES.length, { error: typeListMsg }))
    .meta({ description: 'one or several ControlNets (comma list)' }),
  controlnet_type: z.preprocess(toOptionalString, z.enum(CONTROLNET_TYPES, { error: `controlnet_type must be one of: ${CONTROLNET_TYPES.join(', ')}` }).optional())
    .meta({ description: 'accepted for compatibility; default: first of controlnet_model' }),
  auto_hint: yesNo('auto_hint', 'no'),
  guess_mode: yesNo('guess_mode', 'no'),
  prompt: text('prompt', ''),
  negative_prompt: text('negative_prompt', ''),
  init_image: image('init_image').meta({ description: 'img2img source and annotator input (URL or base64)' }),
  control_image: z.preprocess(
    (v) => (v === null || v === '' ? undefined : v),
    z.union([z.string().min(1).max(MAX_IMAGE_TEXT), z.array(z.string().min(1).max(MAX_IMAGE_TEXT)).min(1).max(CONTROLNET_TYPES.length)],
      { error: 'control_image must be an image URL or base64, or a list of them, one per ControlNet' }).optional())
    .meta({ description: 'the hint; a comma list or array gives one per ControlNet' }),
  mask_image: image('mask_image').meta({ description: 'inpaint mask, white = repaint' }),
  width: size('width'),
  height: size('height'),
  samples: int('samples', 1, 4, 1),
  scheduler: z.preprocess(toOptionalString, z.enum(SCHEDULER_NAMES, { error: `scheduler must be one of: ${SCHEDULER_NAMES.join(', ')}` })
    .default('UniPCMultistepScheduler')),
  num_inference_steps: int('num_inference_steps', 1, 50, 30),
  guidance_scale: num('guidance_scale', 1, 20, 7.5),
  controlnet_conditioning_scale: z.preprocess(toList, z.array(scaleItem, { error: scaleMsg }).min(1, { error: scaleMsg })
    .max(CONTROLNET_TYPES.length, { error: scaleMsg }).default([1]))
    .meta({ description: 'ControlNet weight, or a comma list, one per ControlNet' }),
  strength: num('strength', 0, 1, 0.55),
  seed: z.preprocess(toNumber, intRule('seed', 0, MAX_SEED).optional()).meta({ description: 'null for random; the seed used is echoed in meta.seed' }),
  tomesd: yesNo('tomesd', 'yes'),
  use_karras_sigmas: yesNo('use_karras_sigmas', 'yes'),
  algorithm_type: z.preprocess(toOptionalString, z.enum(ALGORITHM_TYPES, { error: `algorithm_type must be one of: ${ALGORITHM_TYPES.join(', ')}` })
    .default('none')),
  vae: z.preprocess(toOptionalString, z.string({ error: 'vae must be a model id' })
    .regex(modelId, { error: 'vae must be a model id (letters, digits, . _ - /)' }).optional()),
  lora_model: z.preprocess(toList, z.array(z.string().regex(modelId, { error: idMsg('lora_model') }), { error: idMsg('lora_model') })
    .max(8, { error: 'lora_model must name at most 8 LoRAs' }).optional()),
  lora_strength: z.preprocess(toList, z.array(loraStrengthItem, { error: loraStrengthMsg }).min(1, { error: loraStrengthMsg }).optional())
    .meta({ description: 'one per LoRA, or one for all; default 1.0 each' }),
  clip_skip: int('clip_skip', 1, 8, 1),
  safety_checker: yesNo('safety_checker', 'yes'),
  enhance_prompt: yesNo('enhance_prompt', 'yes'),
  multi_lingual: yesNo('multi_lingual', 'yes'),
  upscale: yesNo('upscale', 'no'),
  base64: yesNo('base64', 'no'),
  temp: yesNo('temp', 'no'),
  webhook: z.preprocess(toOptionalString, z.string({ error: 'webhook must be an http or https URL' }).max(2048, { error: 'webhook must be an http or https URL of at most 2048 characters' })
    .refine((s) => /^https?:\/\/[^\s]+$/i.test(s) && URL.canParse(s), { error: 'webhook must be an http or https URL' }).optional()),
  track_id: z.preprocess((v) => (v === null || v === '' ? undefined : v),
    z.union([z.string().max(256), z.number().int()], { error: 'track_id must be a string (at most 256 characters) or an integer' }).optional()),
  loadbalancer: yesNo('loadbalancer', 'yes').meta({ description: 'no keeps the job on the server that received it (pool mode)' }),
});

export type RequestBody = z.output<typeof requestSchema>;

/** The request after the cross-field rules: everything the worker needs, with per-ControlNet lists expanded. */
export interface GenerateRequest extends Omit<RequestBody, 'control_image' | 'controlnet_conditioning_scale' | 'lora_strength' | 'key'> {
  controlnet_type: (typeof CONTROLNET_TYPES)[number];
  /** One entry per ControlNet: its hint source (own entry, else single control_image, else init_image). */
  control_images: string[];
  /** The control_image field as sent (for meta). */
  control_image?: string | string[];
  controlnet_conditioning_scale: number[];
  lora_model: string[];
  lora_strength: number[];
}

export class ValidationError extends Error {}

/** Splits a control_image string on commas, keeping data URLs (which contain a comma) whole. */
export function splitImageList(s: string): string[] {
  const out: string[] = [];
  for (const piece of s.split(',')) {
    const last = out[out.length - 1];
    if (last !== undefined && /^data:[^,]*$/i.test(last)) out[out.length - 1] = `${last},${piece}`;
    else out.push(piece.trim());
  }
  return out.filter(Boolean);
}

function perControlNet<T>(name: string, items: T[], n: number, rule: string): T[] {
  if (items.length === 1) return Array(n).fill(items[0]);
  if (items.length === n) return items;
  throw new ValidationError(`${name} must have ${rule} (${n} ControlNets, got ${items.length})`);
}

/** Validates a body; throws ValidationError whose message names the first broken field and its rule. */
export function parseRequest(body: unknown): GenerateRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ValidationError('the request body must be a JSON object');
  const r = requestSchema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = String(issue.path[0] ?? '');
    // Missing required fields get zod's type error; say "is required" for those.
    const sent = (body as Record<string, unknown>)[field];
    if (field === 'controlnet_model' && (sent === undefined || sent === null || sent === '')) {
      throw new ValidationError(`controlnet_model is required (${typeListMsg.replace('controlnet_model must be ', '')})`);
    }
    throw new ValidationError(issue.message);
  }
  const b = r.data;
  const n = b.controlnet_model.length;
  const sentImages = b.control_image === undefined ? [] : Array.isArray(b.control_image) ? b.control_image
    : n > 1 ? splitImageList(b.control_image) : [b.control_image];
  if (sentImages.length === 0 && !b.init_image) throw new ValidationError('init_image or control_image is required');
  const control_images = sentImages.length === 0 ? Array(n).fill(b.init_image)
    : perControlNet('control_image', sentImages, n, 'one image or one per ControlNet');
  const scales = perControlNet('controlnet_conditioning_scale', b.controlnet_conditioning_scale, n, 'one value or one per ControlNet');
  const loras = b.lora_model ?? [];
  let strengths = b.lora_strength ?? [1];
  if (loras.length > 0) {
    if (strengths.length === 1) strengths = Array(loras.length).fill(strengths[0]);
    else if (strengths.length !== loras.length) {
      throw new ValidationError(`lora_strength must have one value or one per LoRA (${loras.length} LoRAs, got ${strengths.length})`);
    }
  } else strengths = [];
  if (b.mask_image && !b.init_image) throw new ValidationError('mask_image needs init_image (inpainting repaints the init image)');
  if (b.scheduler === 'DDIMInverseScheduler' && !b.init_image) {
    throw new ValidationError('scheduler DDIMInverseScheduler needs init_image (it inverts that image to noise)');
  }
  const { key: _key, ...rest } = b;
  return {
    ...rest,
    controlnet_type: b.controlnet_type ?? b.controlnet_model[0]!,
    control_images,
    controlnet_conditioning_scale: scales,
    lora_model: loras,
    lora_strength: strengths,
  };
}

/** The JSON Schema of the request body (for /docs and the playground). */
export function requestJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(requestSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
