// The request bodies of the generate endpoints (ControlNet and the sibling text2img / img2img / inpaint of every
// family): each field once, with its type, coercion (numeric strings, true/false and null, as clients of the hosted
// API send them), default (per family), limits and error text. One zod schema per body drives validation (fastify's
// route schemas), the OpenAPI document (/openapi.json, /docs) and the playground form.
import { z } from 'zod';
import { CONTROLNET_TYPES, SCHEDULER_NAMES, ALGORITHM_TYPES, SAFETY_CHECKER_TYPES } from '../engine/pipeline/types.ts';
import { isUnset, unsetToUndefined } from './unset.ts';
import { denoisingMode, stepPlanProblem } from '../engine/schedulers/step-plan.ts';

const MAX_SEED = 2 ** 32 - 1;
const MAX_TEXT = 20_000;
/** Inputs may be base64: a 20 MB image is ~27 MB of base64. */
const MAX_IMAGE_TEXT = 28 * 1024 * 1024;

/** null and "" mean "unset"; numeric strings become numbers; anything else is left for the check to refuse. */
function toNumber(v: unknown): unknown {
  if (isUnset(v)) return undefined;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return v;
}

function toYesNo(v: unknown): unknown {
  if (isUnset(v)) return undefined;
  if (v === true) return 'yes';
  if (v === false) return 'no';
  return typeof v === 'string' ? v.trim().toLowerCase() : v;
}

function toOptionalString(v: unknown): unknown {
  if (isUnset(v)) return undefined;
  return typeof v === 'number' ? String(v) : v;
}

/** "a,b" or ["a","b"] → trimmed, non-empty items. */
function toList(v: unknown): unknown {
  if (isUnset(v)) return undefined;
  if (typeof v === 'number') return [String(v)];
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  if (Array.isArray(v)) return v.map((s) => (typeof s === 'number' ? String(s) : typeof s === 'string' ? s.trim() : s));
  return v;
}

// ---- What the documents say each field accepts ----------------------------------------------------------------
// The coercions above accept more than the checks behind them describe (a numeric string for a number, true/false
// for yes/no, a comma list for an array, null for unset). Each field built below records which of these forms it
// accepts, and `describeAcceptedInputs` rewrites that field's JSON schema (input side) to list them, so /openapi.json
// and the playground describe what the server really takes.

type InputForm = 'number' | 'yesno' | 'list' | 'numberList' | 'string' | 'image' | 'upscale';
// Keyed by the schema's definition, which `.meta()` / `.describe()` copies share with the original.
const INPUT_FORMS = new WeakMap<object, InputForm>();
const defOf = (s: unknown): object | undefined => (s as { _zod?: { def?: object } } | undefined)?._zod?.def;
function accepts<T extends z.ZodType>(form: InputForm, schema: T): T {
  INPUT_FORMS.set(defOf(schema)!, form);
  return schema;
}

const NUMERIC_STRING = '^\\s*[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?\\s*$';
const UNSET = [{ type: 'null' }, { const: '' }];

/**
 * zod `toJSONSchema` override (also handed to fastify-type-provider-zod): replaces the JSON schema of each field
 * built here by an `anyOf` of the forms the field accepts, keeping its default and description on the outside.
 */
export function describeAcceptedInputs(ctx: { zodSchema: unknown; jsonSchema: Record<string, unknown> }): void {
  const key = defOf(ctx.zodSchema);
  const form = key ? INPUT_FORMS.get(key) : undefined;
  if (!form) return;
  const js = ctx.jsonSchema;
  const { default: def, description, ...checked } = js;
  for (const k of Object.keys(js)) delete js[k];
  let forms: unknown[];
  switch (form) {
    case 'number': forms = [checked, { type: 'string', pattern: NUMERIC_STRING, description: 'the same number as a string' }]; break;
    case 'yesno': forms = [checked, { type: 'boolean', description: 'true = "yes", false = "no"' }]; break;
    case 'list': forms = [{ type: 'string', description: 'comma list' }, checked]; break;
    case 'numberList': forms = [{ type: 'number' }, { type: 'string', description: 'a number or a comma list of numbers' }, checked]; break;
    case 'image': forms = [checked, { type: 'array', items: checked, minItems: 1, maxItems: 1, description: 'a one-element array (v7 clients)' }]; break;
    case 'upscale': forms = [{ type: 'string', enum: ['yes', 'no'], description: 'yes = 2, no = 1' }, { type: 'boolean', description: 'true = 2, false = 1' },
      checked, { type: 'string', enum: ['1', '2', '3'], description: 'the factor as a string' }]; break;
    default: forms = [checked];
  }
  Object.assign(js, { anyOf: [...forms, ...UNSET] }, def !== undefined ? { default: def } : {}, description ? { description } : {});
}

// ---- Field builders ------------------------------------------------------------------------------------------

function intRule(name: string, min: number, max: number) {
  const msg = `${name} must be an integer between ${min} and ${max}`;
  return z.number({ error: msg }).int({ error: msg }).min(min, { error: msg }).max(max, { error: msg });
}

function int(name: string, min: number, max: number, def: number) {
  return accepts('number', z.preprocess(toNumber, intRule(name, min, max).default(def)));
}

function num(name: string, min: number, max: number, def: number) {
  const msg = `${name} must be a number between ${min} and ${max}`;
  return accepts('number', z.preprocess(toNumber, z.number({ error: msg }).min(min, { error: msg }).max(max, { error: msg }).default(def)));
}

function yesNo(name: string, def: 'yes' | 'no') {
  return accepts('yesno', z.preprocess(toYesNo, z.enum(['yes', 'no'], { error: `${name} must be "yes" or "no"` }).default(def)));
}

function text(name: string, def: string, max = MAX_TEXT) {
  const msg = `${name} must be a string of at most ${max} characters`;
  return accepts('string', z.preprocess(toOptionalString, z.string({ error: msg }).max(max, { error: msg }).default(def)));
}

/** A text that must be sent and not be empty (text2img's prompt). */
function requiredText(name: string, max = MAX_TEXT) {
  const msg = `${name} must be a string of at most ${max} characters`;
  return accepts('string', z.preprocess(toOptionalString, z.string({ error: (iss) => (iss.input === undefined ? `${name} is required` : msg) })
    .min(1, { error: `${name} is required` }).max(max, { error: msg })));
}

const size = (name: string) => {
  const msg = `${name} must be a multiple of 8 between 64 and 1024`;
  return accepts('number', z.preprocess(toNumber, z.number({ error: msg }).int({ error: msg }).min(64, { error: msg }).max(1024, { error: msg })
    .multipleOf(8, { error: msg }).default(512)));
};

const typeListMsg = `controlnet_model must be a comma list of: ${CONTROLNET_TYPES.join(', ')}`;
const typeRequiredMsg = `controlnet_model is required (${typeListMsg.replace('controlnet_model must be ', '')})`;
const imageMsg = (name: string) => `${name} must be an image URL (http/https), a data URL or base64`;
/** One image; v7 clients send it as a one-element array. `required` gives "<name> is required" when it is absent. */
const image = (name: string, required = false) => {
  const one = z.string({ error: (iss) => (iss.input === undefined && required ? `${name} is required` : imageMsg(name)) })
    .min(1, { error: imageMsg(name) }).max(MAX_IMAGE_TEXT, { error: `${name} is too large` });
  return accepts('image', z.preprocess((v) => (isUnset(v) ? undefined : Array.isArray(v) && v.length === 1 ? v[0] : v),
    required ? one : one.optional()));
};

const scaleMsg = 'controlnet_conditioning_scale must be a number between 0 and 5, or a comma list of them, one per ControlNet';
const scaleItem = z.preprocess(toNumber, z.number({ error: scaleMsg }).min(0, { error: scaleMsg }).max(5, { error: scaleMsg }));
const loraStrengthMsg = 'lora_strength must be a number between 0.1 and 1, or a comma list of them, one per LoRA';
const loraStrengthItem = z.preprocess(toNumber, z.number({ error: loraStrengthMsg }).min(0.1, { error: loraStrengthMsg }).max(1, { error: loraStrengthMsg }));
const idMsg = (name: string) => `${name} must be a comma list of model ids (letters, digits, . _ - /)`;
const modelId = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
const modelIdMsg = 'model_id must be a model id (letters, digits, . _ - /, at most 128 characters)';

/** Above this the hosted API clamps (it never refuses 51); `meta.steps` says what ran. */
export const MAX_STEPS = 50;
const stepsMsg = (name: string) => `${name} must be an integer of at least 1 (above ${MAX_STEPS} runs ${MAX_STEPS})`;
const steps = (name: string, def?: number) => {
  const rule = z.number({ error: stepsMsg(name) }).int({ error: stepsMsg(name) }).min(1, { error: stepsMsg(name) });
  return accepts('number', z.preprocess(toNumber, def === undefined ? rule.optional() : rule.default(def))
    .transform((n) => (n === undefined ? n : Math.min(n, MAX_STEPS))));
};

// ---- Endpoints and their documented defaults ---------------------------------------------------------------------

/** What an endpoint makes: ControlNet (the seed's endpoint) or one of the sibling generators. */
export const TASKS = ['controlnet', 'text2img', 'img2img', 'inpaint'] as const;
export type Task = (typeof TASKS)[number];

/** The hosted API's families of paths (research/modelslab-api-family.md §1.1). */
export const FAMILIES = ['v5', 'v3', 'v6', 'realtime', 'enterprise', 'enterprise_realtime', 'v7'] as const;
export type Family = (typeof FAMILIES)[number];

export interface Endpoint { family: Family; task: Task }

/** The defaults that differ between families; everything else is the SPEC's default everywhere. */
export interface FamilyDefaults {
  steps: number;
  safety_checker: 'yes' | 'no';
  enhance_prompt: 'yes' | 'no';
  multi_lingual: 'yes' | 'no';
  clip_skip: number;
  /** img2img/inpaint strength (the ControlNet endpoints keep the SPEC's 0.55). */
  strength: number;
}

const SPEC_DEFAULTS: FamilyDefaults = { steps: 30, safety_checker: 'yes', enhance_prompt: 'yes', multi_lingual: 'yes', clip_skip: 1, strength: 0.55 };

/**
 * Each family's documented defaults for the sibling generators (research/modelslab-api-family.md §1.2-1.5):
 * v6 community: steps 31, safety_checker false, multi_lingual false, clip_skip 2, strength 0.7 (OpenAPI
 * `CommonImageGenerationParams`); enterprise: steps 21, safety_checker yes, strength 0.7; realtime: safety_checker
 * false and no multi_lingual field; v3 and v7 document no defaults beyond the shared strength 0.7, so they keep the
 * SPEC's. The ControlNet endpoints (every family) use the SPEC's defaults.
 */
export const FAMILY_DEFAULTS: Record<Family, FamilyDefaults> = {
  v5: SPEC_DEFAULTS,
  v3: { ...SPEC_DEFAULTS, strength: 0.7 },
  v6: { ...SPEC_DEFAULTS, steps: 31, safety_checker: 'no', multi_lingual: 'no', clip_skip: 2, strength: 0.7 },
  realtime: { ...SPEC_DEFAULTS, safety_checker: 'no', multi_lingual: 'no', strength: 0.7 },
  enterprise: { ...SPEC_DEFAULTS, steps: 21, strength: 0.7 },
  enterprise_realtime: { ...SPEC_DEFAULTS, safety_checker: 'no', multi_lingual: 'no', strength: 0.7 },
  v7: { ...SPEC_DEFAULTS, strength: 0.7 },
};

export function defaultsFor(e: Endpoint): FamilyDefaults {
  return e.task === 'controlnet' ? SPEC_DEFAULTS : FAMILY_DEFAULTS[e.family];
}

/** The v6 inpaint example (and the old inpaint table) send `steps`: it stands for num_inference_steps when that is unset. */
function stepsAlias(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const b = v as Record<string, unknown>;
  return isUnset(b.num_inference_steps) && !isUnset(b.steps) ? { ...b, num_inference_steps: b.steps } : b;
}

function fields(e: Endpoint, keyRequired: boolean) {
  const d = defaultsFor(e);
  const controlnet = e.task === 'controlnet';
  const typeList = z.array(z.enum(CONTROLNET_TYPES, { error: typeListMsg }), { error: (iss) => (iss.input === undefined ? typeRequiredMsg : typeListMsg) })
    .min(1, { error: typeListMsg }).max(CONTROLNET_TYPES.length, { error: typeListMsg });
  const keyText = 'API key; may instead come as `Authorization: Bearer <key>` or a header named `key`';
  return {
    key: keyRequired
      ? z.string({ error: 'key is required (body "key", Authorization: Bearer, or a "key" header)' }).min(1).max(512).meta({ description: keyText })
      : z.string().optional().meta({ description: keyText }),
    model_id: (e.family === 'v7'
      ? accepts('string', z.preprocess(toOptionalString, z.string({ error: (iss) => (iss.input === undefined ? 'model_id is required' : modelIdMsg) })
        .regex(modelId, { error: modelIdMsg })))
      : accepts('string', z.preprocess(toOptionalString, z.string({ error: modelIdMsg }).regex(modelId, { error: modelIdMsg }).optional())))
      .meta({ description: e.family === 'v7' ? 'base model (required on v7)' : "base model; default: the server's default model" }),
    controlnet_model: accepts('list', z.preprocess(toList, controlnet ? typeList : typeList.optional()))
      .meta({ description: controlnet ? 'one or several ControlNets (comma list)' : 'optional: one or several ControlNets to add (comma list)' }),
    controlnet_type: accepts('string', z.preprocess(toOptionalString, z.enum(CONTROLNET_TYPES, { error: `controlnet_type must be one of: ${CONTROLNET_TYPES.join(', ')}` }).optional()))
      .meta({ description: 'accepted for compatibility; default: first of controlnet_model' }),
    auto_hint: yesNo('auto_hint', 'no'),
    guess_mode: yesNo('guess_mode', 'no'),
    prompt: e.task === 'text2img' ? requiredText('prompt') : text('prompt', ''),
    negative_prompt: text('negative_prompt', ''),
    prompt_weighting: yesNo('prompt_weighting', 'yes')
      .meta({ description: 'read (word:1.3), ((word)), [word], \\( escapes and BREAK in both prompts (A1111 / diffusers lpw weighting); no = plain text' }),
    init_image: image('init_image', e.task === 'img2img' || e.task === 'inpaint')
      .meta({ description: controlnet ? 'img2img source and annotator input (URL or base64)' : 'the image to start from (URL or base64)' }),
    control_image: accepts('image', z.preprocess(
      unsetToUndefined,
      z.union([z.string().min(1).max(MAX_IMAGE_TEXT), z.array(z.string().min(1).max(MAX_IMAGE_TEXT)).min(1).max(CONTROLNET_TYPES.length)],
        { error: 'control_image must be an image URL or base64, or a list of them, one per ControlNet' }).optional()))
      .meta({ description: 'the hint; a comma list or array gives one per ControlNet' }),
    mask_image: image('mask_image', e.task === 'inpaint').meta({ description: 'inpaint mask, white = repaint' }),
    width: size('width'),
    height: size('height'),
    samples: int('samples', 1, 4, 1),
    scheduler: accepts('string', z.preprocess(toOptionalString, z.enum(SCHEDULER_NAMES, { error: `scheduler must be one of: ${SCHEDULER_NAMES.join(', ')}` })
      .default('UniPCMultistepScheduler'))),
    num_inference_steps: steps('num_inference_steps', d.steps)
      .meta({ description: `denoising steps; above ${MAX_STEPS} runs ${MAX_STEPS} (meta.steps says what ran)` }),
    steps: steps('steps').meta({ description: 'alias of num_inference_steps (the inpaint examples send it)' }),
    guidance_scale: num('guidance_scale', 1, 20, 7.5),
    controlnet_conditioning_scale: accepts('numberList', z.preprocess(toList, z.array(scaleItem, { error: scaleMsg }).min(1, { error: scaleMsg })
      .max(CONTROLNET_TYPES.length, { error: scaleMsg }).default([1])))
      .meta({ description: 'ControlNet weight, or a comma list, one per ControlNet' }),
    strength: num('strength', 0, 1, controlnet ? 0.55 : d.strength),
    seed: accepts('number', z.preprocess(toNumber, intRule('seed', 0, MAX_SEED).optional())).meta({ description: 'null for random; the seed used is echoed in meta.seed' }),
    tomesd: yesNo('tomesd', 'yes'),
    use_karras_sigmas: yesNo('use_karras_sigmas', 'yes'),
    algorithm_type: accepts('string', z.preprocess(toOptionalString, z.enum(ALGORITHM_TYPES, { error: `algorithm_type must be one of: ${ALGORITHM_TYPES.join(', ')}` })
      .default('none'))),
    vae: accepts('string', z.preprocess(toOptionalString, z.string({ error: 'vae must be a model id' })
      .regex(modelId, { error: 'vae must be a model id (letters, digits, . _ - /)' }).optional())),
    lora_model: accepts('list', z.preprocess(toList, z.array(z.string().regex(modelId, { error: idMsg('lora_model') }), { error: idMsg('lora_model') })
      .max(8, { error: 'lora_model must name at most 8 LoRAs' }).optional())),
    lora_strength: accepts('numberList', z.preprocess(toList, z.array(loraStrengthItem, { error: loraStrengthMsg }).min(1, { error: loraStrengthMsg }).optional()))
      .meta({ description: 'one per LoRA, or one for all; default 1.0 each' }),
    clip_skip: int('clip_skip', 1, 8, d.clip_skip),
    safety_checker: yesNo('safety_checker', d.safety_checker),
    enhance_prompt: yesNo('enhance_prompt', d.enhance_prompt),
    multi_lingual: yesNo('multi_lingual', d.multi_lingual),
    safety_checker_type: accepts('string', z.preprocess(toOptionalString, z.enum(SAFETY_CHECKER_TYPES, { error: `safety_checker_type must be one of: ${SAFETY_CHECKER_TYPES.join(', ')}` })
      .default('sensitive_content_text'))).meta({ description: 'how an image the safety checker flags is replaced' }),
    upscale: accepts('upscale', z.preprocess((v) => {
      const y = toYesNo(v);
      return y === 'yes' ? 2 : y === 'no' ? 1 : typeof y === 'string' && /^[123]$/.test(y) ? Number(y) : y;
    }, z.union([z.literal(1), z.literal(2), z.literal(3)], { error: 'upscale must be "yes", "no", or the factor 1, 2 or 3' }).default(1)))
      .meta({ description: 'upscale factor of each output: yes = 2, no = 1; 3 uses a ×4 model resized to ×3' }),
    base64: yesNo('base64', 'no'),
    temp: yesNo('temp', 'no'),
    instant_response: yesNo('instant_response', 'no').meta({ description: 'yes: answer "processing" at once instead of waiting for the result' }),
    webhook: accepts('string', z.preprocess(toOptionalString, z.string({ error: 'webhook must be an http or https URL' }).max(2048, { error: 'webhook must be an http or https URL of at most 2048 characters' })
      .refine((s) => /^https?:\/\/[^\s]+$/i.test(s) && URL.canParse(s), { error: 'webhook must be an http or https URL' }).optional())),
    track_id: z.preprocess(unsetToUndefined,
      z.union([z.string().max(256), z.number().int()], { error: 'track_id must be a string (at most 256 characters) or an integer' }).optional()),
    loadbalancer: yesNo('loadbalancer', 'yes').meta({ description: 'no keeps the job on the server that received it (pool mode)' }),
  };
}

const schemaName = (e: Endpoint, keyRequired: boolean) => {
  const fam = e.family.split('_').map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
  const task = { controlnet: 'ControlNet', text2img: 'Text2Img', img2img: 'Img2Img', inpaint: 'Inpaint' }[e.task];
  return e.task === 'controlnet' ? `ControlNetRequest${keyRequired ? '' : 'Fields'}` : `${fam}${task}Request${keyRequired ? '' : 'Fields'}`;
};

function build(e: Endpoint, keyRequired: boolean) {
  return z.preprocess(stepsAlias, z.object(fields(e, keyRequired), { error: 'the request body must be a JSON object' }));
}
type BodySchema = ReturnType<typeof build>;
const built = new Map<string, BodySchema>();

/**
 * The zod schema of one endpoint's JSON body: each field with its coercion, default (per family), limits and error
 * text. `keyRequired` (the HTTP routes) makes `key` required; the server fills it from an Authorization or `key`
 * header before validating. The ControlNet endpoints of all families share one schema (SPEC defaults), so it is
 * keyed by task alone for them. Registered under a name in zod's global registry (components of /openapi.json).
 */
export function bodySchema(e: Endpoint, keyRequired = false): BodySchema {
  const norm: Endpoint = e.task === 'controlnet' ? { family: 'v5', task: 'controlnet' } : e;
  const id = schemaName(norm, keyRequired);
  let s = built.get(id);
  if (!s) {
    s = build(norm, keyRequired);
    z.globalRegistry.add(s, { id });
    built.set(id, s);
  }
  return s;
}

/** The ControlNet body (the seed's endpoint), key optional: for the CLI and tests. */
export const requestSchema = bodySchema({ family: 'v5', task: 'controlnet' });

/** The top-level field names of endpoint `e`'s body (tests, the playground). */
export function bodyFieldNames(e: Endpoint): string[] {
  return Object.keys(fields(e, false));
}

export type RequestBody = z.output<typeof requestSchema>;

/** The request after the cross-field rules: everything the worker needs, with per-ControlNet lists expanded. */
export interface GenerateRequest extends Omit<RequestBody, 'control_image' | 'controlnet_conditioning_scale' | 'lora_strength' | 'key' | 'controlnet_model' | 'controlnet_type' | 'steps' | 'instant_response' | 'num_inference_steps'> {
  /** The ControlNets, in order; empty for text2img / img2img / inpaint without one. */
  controlnet_model: (typeof CONTROLNET_TYPES)[number][];
  controlnet_type?: (typeof CONTROLNET_TYPES)[number];
  num_inference_steps: number;
  /** One entry per ControlNet: its hint source (own entry, else single control_image, else init_image). */
  control_images: string[];
  /** The control_image field as sent (for meta). */
  control_image?: string | string[];
  controlnet_conditioning_scale: number[];
  lora_model: string[];
  lora_strength: number[];
  /** The family of paths it came in on (its fetch_result path); absent: the v6 images fetch. */
  family?: Family;
  /** The generator it came in on; absent: controlnet. */
  task?: Task;
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

export const CONTROLNET_ENDPOINT: Endpoint = { family: 'v5', task: 'controlnet' };

/** A body that passed `bodySchema(e)`, of any endpoint. */
export type ValidBody = z.output<BodySchema>;

/**
 * The cross-field rules (SPEC "How the inputs combine") on a body that passed `bodySchema(e)`: expands the
 * per-ControlNet lists, requires a hint source for every ControlNet, a mask only with an init image.
 * Throws ValidationError naming the field and the rule.
 */
export function resolveRequest(b: ValidBody, e: Endpoint = CONTROLNET_ENDPOINT, opts: ResolveOptions = {}): GenerateRequest {
  const types = b.controlnet_model ?? [];
  const n = types.length;
  const sentImages = b.control_image === undefined ? [] : Array.isArray(b.control_image) ? b.control_image
    : n > 1 ? splitImageList(b.control_image) : [b.control_image];
  if (n > 0 && sentImages.length === 0 && !b.init_image) {
    throw new ValidationError(e.task === 'controlnet' ? 'init_image or control_image is required'
      : 'init_image or control_image is required when controlnet_model is sent');
  }
  const control_images = n === 0 ? [] : sentImages.length === 0 ? Array(n).fill(b.init_image)
    : perControlNet('control_image', sentImages, n, 'one image or one per ControlNet');
  const scales = n === 0 ? [] : perControlNet('controlnet_conditioning_scale', b.controlnet_conditioning_scale, n, 'one value or one per ControlNet');
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
  if (opts.denoising !== false) {
    const mode = denoisingMode({ scheduler: b.scheduler, hasInitImage: !!b.init_image, hasMaskImage: !!b.mask_image, strength: b.strength });
    const problem = stepPlanProblem({ scheduler: b.scheduler, mode, steps: b.num_inference_steps!, strength: b.strength, useKarrasSigmas: b.use_karras_sigmas === 'yes' });
    if (problem) throw new ValidationError(problem.message);
  }
  const { key: _key, steps: _steps, instant_response: _instant, controlnet_type, num_inference_steps, ...rest } = b;
  const type = controlnet_type ?? types[0];
  return {
    ...rest,
    num_inference_steps: num_inference_steps!,
    controlnet_model: types,
    ...(type ? { controlnet_type: type } : {}),
    control_images,
    controlnet_conditioning_scale: scales,
    lora_model: loras,
    lora_strength: strengths,
    ...(e.task === 'controlnet' ? {} : { family: e.family, task: e.task }),
  };
}

/**
 * `denoising` (default true; the hint endpoints pass false): also check the step plan, i.e. refuse a scheduler ×
 * mode × steps × strength combination that would run no denoising step or fewer than the scheduler needs.
 */
export interface ResolveOptions { denoising?: boolean }

/** Validates a body of endpoint `e` (default: ControlNet); throws ValidationError whose message names the first broken field and its rule. */
export function parseRequest(body: unknown, e: Endpoint = CONTROLNET_ENDPOINT, opts: ResolveOptions = {}): GenerateRequest {
  const r = bodySchema(e).safeParse(body);
  if (!r.success) throw new ValidationError(r.error.issues[0]!.message);
  return resolveRequest(r.data, e, opts);
}

/** The JSON Schema of a request body (input side, with the accepted input forms), for the playground and tests. */
export function requestJsonSchema(e: Endpoint = CONTROLNET_ENDPOINT): Record<string, unknown> {
  const out = z.toJSONSchema(bodySchema(e), { io: 'input', unrepresentable: 'any', override: describeAcceptedInputs }) as Record<string, unknown>;
  // The schema is registered under a name, so zod answers with a $ref into $defs: inline it.
  const defs = out.$defs as Record<string, Record<string, unknown>> | undefined;
  const ref = typeof out.$ref === 'string' ? out.$ref.replace('#/$defs/', '') : undefined;
  return ref && defs?.[ref] ? { $schema: out.$schema, ...defs[ref] } : out;
}
