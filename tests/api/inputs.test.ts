// The reported request cases through a real server: "null" strings for unset fields are accepted, and step plans
// that would run no real denoising get a 400 naming the field (they used to answer 200).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, tinyPngBase64, type TestApp } from './harness.ts';

let t: TestApp;
let img: string;
before(async () => { t = await startTestApp(); img = await tinyPngBase64(); });
after(async () => { await t.close(); });

const gen = (body: Record<string, unknown>) => t.post('/api/v6/images/controlnet', { key: t.key, controlnet_model: 'canny', model_id: 'sd-test', ...body });

test('seed "null" and webhook "null" (and "" elsewhere) are accepted as unset', async () => {
  const r = await gen({ control_image: img, seed: 'null', webhook: 'null', track_id: '', vae: 'null', lora_model: '' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.notEqual(r.body.status, 'error');
});

test('zero-step DDIM inversion, one-step IPNDM and strength 0 img2img are 400s naming the field', async () => {
  for (const [body, msg] of [
    [{ init_image: img, scheduler: 'DDIMInverseScheduler', strength: 0 }, /^strength 0 with num_inference_steps 30 runs 0 DDIM inversion steps/],
    [{ init_image: img, scheduler: 'DDIMInverseScheduler', num_inference_steps: 1 }, /^num_inference_steps must be at least 2 for DDIMInverseScheduler/],
    [{ control_image: img, scheduler: 'IPNDMScheduler', num_inference_steps: 1 }, /^num_inference_steps must be at least 2 for IPNDMScheduler/],
    [{ init_image: img, scheduler: 'DDIMScheduler', strength: 0 }, /^strength 0 with num_inference_steps 30 runs 0 img2img steps/],
  ] as const) {
    const r = await gen(body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match(r.body.message, msg);
  }
});

test('the enterprise bodies follow the same unset rule (model_type "null" is the default kind)', async () => {
  const r = await t.post('/api/v1/enterprise/verify_model', { key: t.adminKey, model_id: 'sd-test', model_type: 'null' });
  const plain = await t.post('/api/v1/enterprise/verify_model', { key: t.adminKey, model_id: 'sd-test' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, plain.body);
});
