import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMeta } from '../../src/worker/meta.ts';
import { parseRequest } from '../../src/request/schema.ts';
import type { Applied } from '../../src/engine/pipeline/types.ts';

const SPEC_META_KEYS = ['prompt', 'negative_prompt', 'model_id', 'controlnet_model', 'controlnet_type', 'scheduler', 'W', 'H', 'steps',
  'guidance_scale', 'controlnet_conditioning_scale', 'strength', 'seed', 'n_samples', 'lora', 'lora_strength', 'vae', 'clip_skip', 'tomesd',
  'use_karras_sigmas', 'algorithm_type', 'safety_checker', 'enhance_prompt', 'multi_lingual', 'upscale', 'base64', 'temp', 'init_image',
  'control_image', 'mask_image', 'auto_hint', 'guess_mode', 'file_prefix'];

const applied: Applied = {
  mode: 'img2img', stepsRun: 12, prompt: 'enhanced prompt', negativePrompt: 'blurry', guessMode: false, tome: false, karrasSigmas: 'ignored', algorithmType: 'none',
  loraIgnored: [], loraUnmatched: [], annotatorNotes: {},
  safetyChecker: { status: 'unavailable', reason: 'no safety checker installed' }, upscale: { status: 'ran', model: 'x2', factor: 2 },
  translation: { status: 'unavailable', reason: 'no translator installed' }, promptEnhancement: { status: 'off' }, promptWeighting: true,
};

test('meta has every SPEC key under the hosted names; the engine\'s applied values win', () => {
  const r = { ...parseRequest({ controlnet_model: 'canny,depth', init_image: 'https://e/i.png', control_image: 'data:image/png;base64,QUJD',
    lora_model: 'a,b', lora_strength: '0.5', width: 256, samples: 3 }), model_id: 'm', seed: 9 };
  // plus prompt_weighting, our field (README: prompt weighting)
  assert.deepEqual(Object.keys(buildMeta(r, 'pfx')).sort(), [...SPEC_META_KEYS, 'prompt_weighting'].sort());
  const m = buildMeta(r, 'pfx', applied);
  assert.deepEqual(Object.keys(m).filter((k) => !SPEC_META_KEYS.includes(k)).sort(), ['mode', 'multi_lingual_note', 'prompt_weighting', 'safety_checker_note', 'steps_run', 'upscale_factor', 'upscale_model']);
  assert.equal(m.W, 256); assert.equal(m.H, 512); assert.equal(m.n_samples, 3); assert.equal(m.seed, 9); assert.equal(m.steps, 30);
  assert.equal(m.controlnet_model, 'canny,depth'); assert.deepEqual(m.controlnet_conditioning_scale, [1, 1]);
  assert.equal(m.lora, 'a,b'); assert.equal(m.lora_strength, '0.5,0.5'); assert.equal(m.file_prefix, 'pfx');
  assert.equal(m.prompt, 'enhanced prompt'); assert.equal(m.negative_prompt, 'blurry'); assert.equal(m.safety_checker, 'unavailable');
  assert.equal(m.safety_checker_note, 'no safety checker installed');
  assert.equal(m.upscale, 'yes'); assert.equal(m.upscale_model, 'x2'); assert.equal(m.enhance_prompt, 'no'); assert.equal(m.multi_lingual, 'unavailable');
  assert.equal(m.use_karras_sigmas, 'ignored'); assert.equal(m.tomesd, 'no'); assert.equal(m.mode, 'img2img'); assert.equal(m.steps_run, 12);
  assert.equal(m.init_image, 'https://e/i.png');
  assert.match(String(m.control_image), /^<base64 image, \d+ characters>$/);
});

test('while a job waits or runs, meta claims nothing the engine has not done; zero ControlNets read null', () => {
  const r = { ...parseRequest({ controlnet_model: 'canny', init_image: 'https://e/i.png', upscale: 'no', algorithm_type: 'dpmsolver++' }), model_id: 'm', seed: 1 };
  const pending = buildMeta(r, 'pfx');
  assert.equal(pending.safety_checker, 'pending'); assert.equal(pending.enhance_prompt, 'pending'); assert.equal(pending.multi_lingual, 'pending');
  assert.equal(pending.use_karras_sigmas, 'pending'); assert.equal(pending.algorithm_type, 'pending');
  assert.equal(pending.upscale, 'no', 'not asked for: nothing to claim');
  const off = buildMeta({ ...r, safety_checker: 'no' }, 'pfx');
  assert.equal(off.safety_checker, 'no');
  const done = buildMeta(r, 'pfx', { ...applied, karrasSigmas: 'applied' });
  assert.equal(done.safety_checker, 'unavailable'); assert.equal(done.use_karras_sigmas, 'yes');
  const t2i = buildMeta({ ...parseRequest({ prompt: 'x' }, { family: 'v6', task: 'text2img' }), model_id: 'm', seed: 1 }, 'pfx', applied);
  assert.equal(t2i.controlnet_model, null); assert.equal(t2i.controlnet_type, null); assert.equal(t2i.controlnet_conditioning_scale, null);
});
