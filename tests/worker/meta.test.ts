import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMeta } from '../../src/worker/meta.ts';
import { parseRequest } from '../../src/request/schema.ts';

const SPEC_META_KEYS = ['prompt', 'negative_prompt', 'model_id', 'controlnet_model', 'controlnet_type', 'scheduler', 'W', 'H', 'steps',
  'guidance_scale', 'controlnet_conditioning_scale', 'strength', 'seed', 'n_samples', 'lora', 'lora_strength', 'vae', 'clip_skip', 'tomesd',
  'use_karras_sigmas', 'algorithm_type', 'safety_checker', 'enhance_prompt', 'multi_lingual', 'upscale', 'base64', 'temp', 'init_image',
  'control_image', 'mask_image', 'auto_hint', 'guess_mode', 'file_prefix'];

test('meta has every SPEC key under the hosted names; the engine\'s applied values win', () => {
  const r = { ...parseRequest({ controlnet_model: 'canny,depth', init_image: 'https://e/i.png', control_image: 'data:image/png;base64,QUJD',
    lora_model: 'a,b', lora_strength: '0.5', width: 256, samples: 3 }), model_id: 'm', seed: 9 };
  const m = buildMeta(r, 'pfx', { prompt: 'enhanced prompt', safety_checker: 'unavailable' });
  // plus prompt_weighting, our field (README: prompt weighting)
  assert.deepEqual(Object.keys(m).sort(), [...SPEC_META_KEYS, 'prompt_weighting'].sort());
  assert.equal(m.W, 256); assert.equal(m.H, 512); assert.equal(m.n_samples, 3); assert.equal(m.seed, 9); assert.equal(m.steps, 30);
  assert.equal(m.controlnet_model, 'canny,depth'); assert.deepEqual(m.controlnet_conditioning_scale, [1, 1]);
  assert.equal(m.lora, 'a,b'); assert.equal(m.lora_strength, '0.5,0.5'); assert.equal(m.file_prefix, 'pfx');
  assert.equal(m.prompt, 'enhanced prompt'); assert.equal(m.safety_checker, 'unavailable');
  assert.equal(m.init_image, 'https://e/i.png');
  assert.match(String(m.control_image), /^<base64 image, \d+ characters>$/);
});
