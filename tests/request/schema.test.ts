import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequest, splitImageList, requestJsonSchema } from '../../src/request/schema.ts';
import { CONTROLNET_TYPES, SCHEDULER_NAMES, ALGORITHM_TYPES } from '../../src/engine/pipeline/types.ts';

const base = { key: 'k', controlnet_model: 'canny', init_image: 'https://example.com/a.png' };
const ok = (extra: Record<string, unknown>) => parseRequest({ ...base, ...extra });
const bad = (extra: Record<string, unknown>, msg: RegExp) => assert.throws(() => ok(extra), msg);

test('defaults are the SPEC defaults', () => {
  const r = ok({});
  assert.equal(r.width, 512); assert.equal(r.height, 512); assert.equal(r.samples, 1);
  assert.equal(r.scheduler, 'UniPCMultistepScheduler'); assert.equal(r.num_inference_steps, 30);
  assert.equal(r.guidance_scale, 7.5); assert.deepEqual(r.controlnet_conditioning_scale, [1]); assert.equal(r.strength, 0.55);
  assert.equal(r.seed, undefined); assert.equal(r.tomesd, 'yes'); assert.equal(r.use_karras_sigmas, 'yes');
  assert.equal(r.algorithm_type, 'none'); assert.equal(r.vae, undefined); assert.deepEqual(r.lora_model, []);
  assert.equal(r.clip_skip, 1); assert.equal(r.safety_checker, 'yes'); assert.equal(r.enhance_prompt, 'yes');
  assert.equal(r.multi_lingual, 'yes'); assert.equal(r.upscale, 1); assert.equal(r.safety_checker_type, 'sensitive_content_text'); assert.equal(r.base64, 'no'); assert.equal(r.temp, 'no');
  assert.equal(r.auto_hint, 'no'); assert.equal(r.guess_mode, 'no'); assert.equal(r.prompt, ''); assert.equal(r.negative_prompt, '');
  assert.equal(r.controlnet_type, 'canny'); assert.deepEqual(r.control_images, ['https://example.com/a.png']);
});

test('every field of the seed is accepted, numbers as numeric strings', () => {
  const r = ok({
    model_id: 'my-model', controlnet_model: 'canny,depth', controlnet_type: 'depth', auto_hint: 'yes', guess_mode: 'yes',
    prompt: 'a cat', negative_prompt: 'blurry', control_image: 'https://e.com/1.png,https://e.com/2.png', mask_image: 'https://e.com/m.png',
    width: '768', height: '64', samples: '4', scheduler: 'DPMSolverMultistepScheduler', num_inference_steps: '31',
    guidance_scale: '20', controlnet_conditioning_scale: '0.5,1.5', strength: '1', seed: '4294967295', tomesd: 'no',
    use_karras_sigmas: 'no', algorithm_type: 'dpmsolver+++', vae: 'my-vae', lora_model: 'more_details,animie', lora_strength: '0.1,1',
    clip_skip: '8', safety_checker: 'no', enhance_prompt: 'no', multi_lingual: 'no', upscale: 'yes', base64: 'yes', temp: 'yes',
    webhook: 'https://hooks.example.com/x', track_id: 42, instant_response: 'yes', some_unknown: { a: 1 },
  });
  assert.equal(r.width, 768); assert.equal(r.height, 64); assert.equal(r.samples, 4); assert.equal(r.num_inference_steps, 31);
  assert.equal(r.guidance_scale, 20); assert.deepEqual(r.controlnet_conditioning_scale, [0.5, 1.5]); assert.equal(r.strength, 1);
  assert.equal(r.seed, 4294967295); assert.deepEqual(r.lora_model, ['more_details', 'animie']); assert.deepEqual(r.lora_strength, [0.1, 1]);
  assert.equal(r.clip_skip, 8); assert.equal(r.controlnet_type, 'depth'); assert.deepEqual(r.control_images, ['https://e.com/1.png', 'https://e.com/2.png']);
  assert.equal(r.track_id, 42); assert.equal(r.webhook, 'https://hooks.example.com/x'); assert.equal(r.vae, 'my-vae');
  // instant_response is the route's business, not the job's.
  assert.equal((r as unknown as Record<string, unknown>).instant_response, undefined);
});

test('null means unset for every optional field', () => {
  const nulls = Object.fromEntries(['model_id', 'controlnet_type', 'auto_hint', 'guess_mode', 'prompt', 'negative_prompt', 'control_image',
    'mask_image', 'width', 'height', 'samples', 'scheduler', 'num_inference_steps', 'guidance_scale', 'controlnet_conditioning_scale',
    'strength', 'seed', 'tomesd', 'use_karras_sigmas', 'algorithm_type', 'vae', 'lora_model', 'lora_strength', 'clip_skip', 'safety_checker',
    'enhance_prompt', 'multi_lingual', 'upscale', 'base64', 'temp', 'webhook', 'track_id'].map((k) => [k, null]));
  const r = ok(nulls);
  assert.equal(r.width, 512); assert.equal(r.seed, undefined); assert.equal(r.webhook, undefined); assert.equal(r.strength, 0.55);
});

test('all ControlNet types, schedulers and algorithm types are accepted', () => {
  assert.deepEqual(ok({ controlnet_model: CONTROLNET_TYPES.join(',') }).controlnet_model, [...CONTROLNET_TYPES]);
  for (const s of SCHEDULER_NAMES) assert.equal(ok({ scheduler: s }).scheduler, s);
  for (const a of ALGORITHM_TYPES) assert.equal(ok({ algorithm_type: a }).algorithm_type, a);
  assert.deepEqual(ok({ controlnet_model: ['canny', 'depth'], control_image: ['https://e/1', 'https://e/2'] }).control_images, ['https://e/1', 'https://e/2']);
});

test('each rule broken gives a message naming the field and the rule', () => {
  bad({ width: 250 }, /^Error: width must be a multiple of 8 between 64 and 1024$/);
  bad({ width: 1032 }, /width must be a multiple of 8 between 64 and 1024/);
  bad({ width: 56 }, /width must be a multiple of 8/);
  bad({ height: 'abc' }, /height must be a multiple of 8 between 64 and 1024/);
  bad({ height: 512.5 }, /height must be a multiple of 8/);
  bad({ samples: 5 }, /samples must be an integer between 1 and 4/);
  bad({ samples: 0 }, /samples must be an integer between 1 and 4/);
  bad({ num_inference_steps: 0 }, /num_inference_steps must be an integer of at least 1/);
  bad({ num_inference_steps: '2.5' }, /num_inference_steps must be an integer/);
  bad({ guidance_scale: 0.5 }, /guidance_scale must be a number between 1 and 20/);
  bad({ guidance_scale: '21' }, /guidance_scale must be a number between 1 and 20/);
  bad({ strength: 1.01 }, /strength must be a number between 0 and 1/);
  bad({ strength: -0.1 }, /strength must be a number between 0 and 1/);
  bad({ controlnet_conditioning_scale: 6 }, /controlnet_conditioning_scale must be a number between 0 and 5/);
  bad({ controlnet_conditioning_scale: '1,2' }, /controlnet_conditioning_scale must have one value or one per ControlNet \(1 ControlNets, got 2\)/);
  bad({ seed: -1 }, /seed must be an integer between 0 and 4294967295/);
  bad({ seed: 2 ** 32 }, /seed must be an integer between 0 and 4294967295/);
  bad({ seed: 'x' }, /seed must be an integer/);
  bad({ clip_skip: 9 }, /clip_skip must be an integer between 1 and 8/);
  bad({ clip_skip: 0 }, /clip_skip must be an integer between 1 and 8/);
  bad({ scheduler: 'Foo' }, /scheduler must be one of: DDPMScheduler/);
  bad({ algorithm_type: 'x' }, /algorithm_type must be one of: none, dpmsolver/);
  bad({ controlnet_model: 'canny,blur' }, /controlnet_model must be a comma list of: canny, depth/);
  bad({ controlnet_model: null }, /controlnet_model is required/);
  bad({ controlnet_model: undefined }, /controlnet_model is required/);
  bad({ controlnet_type: 'blur' }, /controlnet_type must be one of/);
  for (const f of ['auto_hint', 'guess_mode', 'tomesd', 'use_karras_sigmas', 'safety_checker', 'enhance_prompt', 'multi_lingual', 'base64', 'temp']) {
    bad({ [f]: 'maybe' }, new RegExp(`${f} must be "yes" or "no"`));
  }
  // upscale: yes = 2, no = 1, or the factor itself (SPEC)
  for (const [v, f] of [['yes', 2], ['no', 1], [true, 2], ['3', 3], [2, 2], [1, 1]] as const) assert.equal(ok({ upscale: v }).upscale, f);
  for (const v of ['maybe', 4, '0', 2.5]) bad({ upscale: v }, /upscale must be "yes", "no", or the factor 1, 2 or 3/);
  for (const t of ['blur', 'pixelate', 'black', 'sensitive_content_text'] as const) assert.equal(ok({ safety_checker_type: t }).safety_checker_type, t);
  bad({ safety_checker_type: 'remove' }, /safety_checker_type must be one of: blur, sensitive_content_text, pixelate, black/);
  bad({ lora_model: 'ok,../etc' }, /lora_model must be a comma list of model ids/);
  bad({ lora_model: 'a,b', lora_strength: '0.5,0.5,0.5' }, /lora_strength must have one value or one per LoRA/);
  bad({ lora_model: 'a', lora_strength: 0.05 }, /lora_strength must be a number between 0.1 and 1/);
  bad({ lora_model: 'a', lora_strength: 1.5 }, /lora_strength must be a number between 0.1 and 1/);
  bad({ model_id: '../x' }, /model_id must be a model id/);
  bad({ vae: '$bad' }, /vae must be a model id/);
  bad({ webhook: 'ftp://x/y' }, /webhook must be an http or https URL/);
  bad({ webhook: 'not a url' }, /webhook must be an http or https URL/);
  bad({ track_id: { a: 1 } }, /track_id must be a string/);
  bad({ prompt: 'x'.repeat(20_001) }, /prompt must be a string of at most 20000 characters/);
  bad({ prompt: ['a'] }, /prompt must be a string/);
  bad({ init_image: 5 }, /init_image must be an image URL/);
  bad({ control_image: { x: 1 } }, /control_image must be an image URL or base64/);
  bad({ init_image: undefined }, /init_image or control_image is required/);
  bad({ controlnet_model: 'canny,depth', control_image: 'https://e/1,https://e/2,https://e/3' }, /control_image must have one image or one per ControlNet \(2 ControlNets, got 3\)/);
  bad({ init_image: undefined, control_image: 'https://e/1', mask_image: 'https://e/m' }, /mask_image needs init_image/);
  bad({ init_image: undefined, control_image: 'https://e/1', scheduler: 'DDIMInverseScheduler' }, /DDIMInverseScheduler needs init_image/);
  assert.throws(() => parseRequest([1, 2]), /request body must be a JSON object/);
  assert.throws(() => parseRequest(null), /request body must be a JSON object/);
});

test('hint sources: own list entry, else single control_image, else init_image', () => {
  assert.deepEqual(ok({ controlnet_model: 'canny,depth' }).control_images, [base.init_image, base.init_image]);
  assert.deepEqual(ok({ controlnet_model: 'canny,depth', control_image: 'https://e/c' }).control_images, ['https://e/c', 'https://e/c']);
  assert.deepEqual(ok({ controlnet_model: 'canny,depth', controlnet_conditioning_scale: 0.3 }).controlnet_conditioning_scale, [0.3, 0.3]);
  assert.deepEqual(ok({ lora_model: 'a,b,c', lora_strength: '0.4' }).lora_strength, [0.4, 0.4, 0.4]);
  assert.deepEqual(ok({ lora_model: 'a,b' }).lora_strength, [1, 1]);
});

test('data URLs in a comma list stay whole', () => {
  assert.deepEqual(splitImageList('data:image/png;base64,AAAA,https://e/x.png,data:image/png;base64,BBBB'),
    ['data:image/png;base64,AAAA', 'https://e/x.png', 'data:image/png;base64,BBBB']);
  assert.deepEqual(ok({ controlnet_model: 'canny,depth', control_image: 'data:image/png;base64,AAAA,data:image/png;base64,BBBB' }).control_images,
    ['data:image/png;base64,AAAA', 'data:image/png;base64,BBBB']);
});

test('the JSON schema carries defaults and limits', () => {
  const s = requestJsonSchema() as { properties: Record<string, Record<string, unknown>> };
  const form = (name: string, i: number) => (s.properties[name]!.anyOf as Record<string, unknown>[])[i]!;
  assert.equal(s.properties.width!.default, 512);
  assert.equal(form('width', 0).multipleOf, 8);
  assert.equal(form('width', 0).maximum, 1024);
  assert.equal(s.properties.num_inference_steps!.default, 30);
  assert.ok(Array.isArray(form('scheduler', 0).enum));
});

test('steps above 50 run 50 (the hosted API clamps); `steps` is an alias of num_inference_steps', () => {
  assert.equal(ok({ num_inference_steps: 51 }).num_inference_steps, 50);
  assert.equal(ok({ num_inference_steps: '500' }).num_inference_steps, 50);
  assert.equal(ok({ steps: '21' }).num_inference_steps, 21);
  assert.equal(ok({ steps: 21, num_inference_steps: 40 }).num_inference_steps, 40);
  assert.equal((ok({ steps: 21 }) as unknown as Record<string, unknown>).steps, undefined);
});

test('JSON true/false wherever "yes"/"no" is accepted', () => {
  const r = ok({ auto_hint: true, safety_checker: false, base64: false, temp: true, tomesd: false });
  assert.equal(r.auto_hint, 'yes'); assert.equal(r.safety_checker, 'no'); assert.equal(r.base64, 'no'); assert.equal(r.temp, 'yes');
  assert.equal(r.tomesd, 'no');
});

test('sibling generators: each family its documented defaults, required fields and body quirks', () => {
  const t2i = parseRequest({ prompt: 'a cat' }, { family: 'v6', task: 'text2img' });
  assert.deepEqual(t2i.controlnet_model, []); assert.equal(t2i.controlnet_type, undefined); assert.deepEqual(t2i.control_images, []);
  assert.equal(t2i.num_inference_steps, 31); assert.equal(t2i.safety_checker, 'no'); assert.equal(t2i.multi_lingual, 'no');
  assert.equal(t2i.clip_skip, 2); assert.equal(t2i.family, 'v6'); assert.equal(t2i.task, 'text2img');
  const ent = parseRequest({ prompt: 'a cat', init_image: 'https://e/i.png' }, { family: 'enterprise', task: 'img2img' });
  assert.equal(ent.num_inference_steps, 21); assert.equal(ent.safety_checker, 'yes'); assert.equal(ent.strength, 0.7);
  assert.equal(parseRequest({ prompt: 'x', safety_checker: false, base64: false }, { family: 'realtime', task: 'text2img' }).safety_checker, 'no');
  assert.equal(parseRequest({ prompt: 'x' }, { family: 'realtime', task: 'text2img' }).safety_checker, 'no');
  // v6 inpaint sends steps; v7 sends init_image as a one-element array and requires model_id.
  const inp = parseRequest({ init_image: 'https://e/i.png', mask_image: 'https://e/m.png', steps: '21' }, { family: 'v6', task: 'inpaint' });
  assert.equal(inp.num_inference_steps, 21);
  const v7 = parseRequest({ model_id: 'sd', init_image: ['https://e/i.png'], prompt: 'x' }, { family: 'v7', task: 'img2img' });
  assert.equal(v7.init_image, 'https://e/i.png');
  // a ControlNet may be added to a sibling; its hint then comes from control_image or init_image.
  const withCn = parseRequest({ prompt: 'x', controlnet_model: 'canny', control_image: 'https://e/c.png' }, { family: 'v3', task: 'text2img' });
  assert.deepEqual(withCn.controlnet_model, ['canny']); assert.deepEqual(withCn.control_images, ['https://e/c.png']);
  const no = (body: Record<string, unknown>, e: Parameters<typeof parseRequest>[1], msg: RegExp) => assert.throws(() => parseRequest(body, e), msg);
  no({}, { family: 'v6', task: 'text2img' }, /^Error: prompt is required$/);
  no({ prompt: '' }, { family: 'v3', task: 'text2img' }, /prompt is required/);
  no({ prompt: 'x' }, { family: 'v6', task: 'img2img' }, /^Error: init_image is required$/);
  no({ init_image: 'https://e/i.png' }, { family: 'v6', task: 'inpaint' }, /^Error: mask_image is required$/);
  no({ prompt: 'x' }, { family: 'v7', task: 'text2img' }, /^Error: model_id is required$/);
  no({ model_id: 'sd', prompt: 'x', init_image: ['a', 'b'] }, { family: 'v7', task: 'text2img' }, /init_image must be an image URL/);
  no({ prompt: 'x', controlnet_model: 'canny' }, { family: 'v6', task: 'text2img' }, /init_image or control_image is required when controlnet_model is sent/);
});

test('the JSON schema describes the forms each field accepts (numeric strings, booleans, comma lists, null)', () => {
  const s = requestJsonSchema() as { properties: Record<string, { anyOf: Record<string, unknown>[] }> };
  const types = (name: string) => s.properties[name]!.anyOf.map((f) => f.type ?? (f.const === '' ? 'empty' : 'other'));
  assert.deepEqual(types('width'), ['integer', 'string', 'null', 'empty']);
  assert.match(String(s.properties.width!.anyOf[1]!.pattern), /\\d/);
  assert.deepEqual(types('safety_checker'), ['string', 'boolean', 'null', 'empty']);
  assert.deepEqual(types('controlnet_model'), ['string', 'array', 'null', 'empty']);
  assert.deepEqual(types('controlnet_conditioning_scale'), ['number', 'string', 'array', 'null', 'empty']);
  const v7 = requestJsonSchema({ family: 'v7', task: 'inpaint' }) as { required: string[] };
  assert.deepEqual([...v7.required].sort(), ['init_image', 'mask_image', 'model_id']);
});
