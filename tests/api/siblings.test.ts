// The hosted API's sibling endpoints and client habits, over HTTP with no engine: text2img / img2img / inpaint in
// every family, every family's fetch path, the key in body / Bearer / `key` header, booleans, steps clamping,
// instant_response, 429 headers, and meta while processing. Answers are checked against the documented schemas.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, tinyPngBase64, type TestApp } from './harness.ts';
import { GENERATE_ROUTES } from '../../src/api/routes/generate.ts';
import { errorSchema, processingSchema } from '../../src/api/responses.ts';

let t: TestApp;
let img: string;
before(async () => {
  t = await startTestApp({ config: { maxQueuedPerKey: 1000 } });
  img = await tinyPngBase64();
});
after(async () => { await t.close(); });

const FETCH_OF: Record<string, string> = {
  '/api/v3/': '/api/v3/fetch/', '/api/v6/images/': '/api/v6/images/fetch/', '/api/v6/realtime/': '/api/v6/realtime/fetch/',
  '/api/v1/enterprise/': '/api/v1/enterprise/images/fetch/', '/api/v1/enterprise/images/': '/api/v1/enterprise/images/fetch/',
  '/api/v1/enterprise/realtime/': '/api/v1/enterprise/realtime/fetch/', '/api/v7/images/': '/api/v7/images/fetch/',
};

test('text2img, img2img and inpaint on every family answer processing with that family\'s fetch path, which answers too', async () => {
  const siblings = GENERATE_ROUTES.filter((r) => r.endpoint.task !== 'controlnet');
  assert.equal(siblings.length, 21, '7 path families x 3 tasks');
  for (const { path, endpoint } of siblings) {
    const body: Record<string, unknown> = { key: t.key, prompt: 'a red fox', model_id: 'sd-test', instant_response: true };
    if (endpoint.task !== 'text2img') body.init_image = endpoint.family === 'v7' ? [img] : img;
    if (endpoint.task === 'inpaint') body.mask_image = img;
    const r = await t.post(path, body);
    assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
    processingSchema.parse(r.body);
    const prefix = path.slice(0, path.lastIndexOf('/') + 1);
    assert.equal(r.body.fetch_result, `${t.url}${FETCH_OF[prefix]}${r.body.id}`, path);
    assert.equal(r.body.meta.controlnet_model, null);
    const f = await t.post(new URL(r.body.fetch_result).pathname, { key: t.key });
    assert.equal(f.status, 200, path);
    assert.equal(f.body.id, r.body.id);
  }
});

test('each family\'s documented defaults show in meta; v6 inpaint\'s steps and v7\'s array init_image are understood', async () => {
  const meta = async (path: string, body: Record<string, unknown>) => {
    const r = await t.post(path, { key: t.key, prompt: 'x', instant_response: 'yes', ...body });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.meta;
  };
  const v6 = await meta('/api/v6/images/text2img', {});
  assert.equal(v6.steps, 31); assert.equal(v6.clip_skip, 2); assert.equal(v6.safety_checker, 'no'); assert.equal(v6.multi_lingual, 'no');
  const ent = await meta('/api/v1/enterprise/img2img', { init_image: img });
  assert.equal(ent.steps, 21); assert.equal(ent.strength, 0.7);
  assert.equal(ent.safety_checker, 'pending', 'asked for, not yet run: claims nothing');
  assert.equal((await meta('/api/v6/images/inpaint', { init_image: img, mask_image: img, steps: '21' })).steps, 21);
  assert.equal((await meta('/api/v7/images/image-to-image', { model_id: 'sd-test', init_image: [img], strength: 0.4 })).strength, 0.4);
  const rt = await meta('/api/v6/realtime/text2img', { safety_checker: false, base64: false, temp: false, enhance_prompt: true });
  assert.equal(rt.base64, 'no'); assert.equal(rt.safety_checker, 'no'); assert.equal(rt.enhance_prompt, 'pending');
  const cn = await meta('/api/v6/images/text2img', { controlnet_model: 'canny', control_image: img });
  assert.equal(cn.controlnet_model, 'canny');
});

test('the sibling rules: 400 naming the missing field; 422 for a model not installed', async () => {
  const bad = async (path: string, body: Record<string, unknown>, status: number, msg: RegExp) => {
    const r = await t.post(path, { key: t.key, ...body });
    assert.equal(r.status, status, JSON.stringify(r.body));
    errorSchema.parse(r.body);
    assert.match(r.body.message, msg);
  };
  await bad('/api/v6/images/text2img', {}, 400, /^prompt is required$/);
  await bad('/api/v6/images/img2img', { prompt: 'x' }, 400, /^init_image is required$/);
  await bad('/api/v3/inpaint', { prompt: 'x', init_image: img }, 400, /^mask_image is required$/);
  await bad('/api/v7/images/text-to-image', { prompt: 'x' }, 400, /^model_id is required$/);
  await bad('/api/v7/images/text-to-image', { prompt: 'x', model_id: 'midjourney' }, 422, /model_id "midjourney" is not installed/);
  await bad('/api/v6/images/text2img', { prompt: 'x', width: 1004 }, 400, /^width must be a multiple of 8 between 64 and 1024$/);
});

test('the key as Authorization: Bearer or a `key` header; GET on the v5 fetch', async () => {
  const r = await t.post('/api/v7/images/text-to-image', { prompt: 'x', model_id: 'sd-test', instant_response: true }, { key: t.key });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const b = await t.post('/api/v6/images/text2img', { prompt: 'x', instant_response: true }, { authorization: `Bearer ${t.key}` });
  assert.equal(b.status, 200);
  const g = await fetch(`${t.url}/api/v5/fetch/${r.body.id}`, { headers: { key: t.key } });
  assert.equal(g.status, 200);
  assert.equal((await g.json()).id, r.body.id);
  const noKey = await fetch(`${t.url}/api/v5/fetch/${r.body.id}`);
  assert.equal(noKey.status, 401);
  assert.equal((await t.post(`/api/v7/images/fetch/${r.body.id}`, {}, { key: 'cn_wrong_key_123456789' })).status, 401);
});

test('steps above 50 run 50 and meta.steps says so; instant_response answers at once', async () => {
  const started = Date.now();
  const r = await t.post('/api/v5/controlnet', { key: t.key, controlnet_model: 'canny', init_image: img, num_inference_steps: '51', instant_response: 'yes' });
  assert.equal(r.status, 200);
  assert.equal(r.body.meta.steps, 50);
  assert.ok(Date.now() - started < 200 + 150, 'did not wait for the 200 ms window');
});

test('429 carries Retry-After and X-RateLimit-Reset as well as retry_after', async () => {
  const limited = await startTestApp({ config: { rateLimitPerMinute: 1 } });
  try {
    const body = { key: limited.key, prompt: 'x', instant_response: true };
    assert.equal((await limited.post('/api/v6/images/text2img', body)).status, 200);
    const r = await limited.post('/api/v6/images/text2img', body);
    assert.equal(r.status, 429);
    errorSchema.parse(r.body);
    assert.equal(r.headers.get('retry-after'), String(r.body.retry_after));
    const reset = Number(r.headers.get('x-ratelimit-reset'));
    const now = Date.now() / 1000;
    assert.ok(reset >= now + r.body.retry_after - 2 && reset <= now + r.body.retry_after + 2, `reset ${reset} vs now ${now}`);
  } finally {
    await limited.close();
  }
});
