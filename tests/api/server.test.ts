// HTTP behaviour that needs no engine: auth, validation, limits, status codes and bodies, fetch of queued jobs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, tinyPngBase64, type TestApp } from './harness.ts';

let t: TestApp;
let img: string;
before(async () => {
  t = await startTestApp({ config: { maxQueuedPerKey: 1000 } });
  img = await tinyPngBase64();
});
after(async () => { await t.close(); });

const gen = (body: Record<string, unknown>, headers?: Record<string, string>, path = '/api/v6/images/controlnet') =>
  t.post(path, { controlnet_model: 'canny', init_image: img, ...body }, headers);

function isError(r: { status: number; body: any }, status: number, msg: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.status, 'error');
  assert.match(r.body.message, msg);
  assert.equal(r.body.messege, r.body.message, 'both spellings');
}

test('all four generate endpoints accept the same body and answer processing with eta, fetch_result, future_links, meta', async () => {
  for (const p of ['/api/v5/controlnet', '/api/v6/images/controlnet', '/api/v1/enterprise/controlnet', '/api/v1/enterprise/images/controlnet']) {
    const r = await gen({ key: t.key, samples: '2', seed: '7', temp: 'yes', track_id: 't1', instant_response: true }, {}, p);
    assert.equal(r.status, 200, p);
    const b = r.body;
    assert.equal(b.status, 'processing');
    assert.equal(typeof b.id, 'number');
    assert.ok(b.eta > 0);
    assert.equal(b.message, 'Try to fetch request after seconds estimated');
    assert.equal(b.messege, b.message);
    assert.equal(b.fetch_result, `${t.url}/api/v6/images/fetch/${b.id}`);
    assert.deepEqual(b.output, []);
    assert.equal(b.future_links.length, 2);
    assert.match(b.future_links[0], /\/outputs\/temp\/[0-9a-f-]+-0\.png\?expires=\d+&signature=/);
    assert.equal(b.meta.seed, 7);
    assert.equal(b.meta.n_samples, 2);
    assert.equal(b.meta.W, 512);
    assert.equal(b.meta.model_id, 'sd-test');
    assert.equal(b.meta.file_prefix, b.future_links[0].match(/temp\/(.+)-0\.png/)[1]);
  }
});

test('the key: body or Bearer; missing or wrong → 401; other keys cannot fetch', async () => {
  isError(await gen({}), 401, /API key is required/);
  isError(await gen({ key: 'cn_wrong_key_123456789' }), 401, /invalid API key/);
  const r = await gen({}, { authorization: `Bearer ${t.key}` });
  assert.equal(r.status, 200);
  const id = r.body.id;
  const other = t.app.ctx.keys.create().key;
  isError(await t.post(`/api/v6/images/fetch/${id}`, { key: other }), 404, new RegExp(`request ${id} not found`));
  for (const p of ['/api/v6/images/fetch/', '/api/v5/fetch/', '/api/v3/fetch/', '/api/v1/enterprise/images/fetch/']) {
    const f = await t.post(`${p}${id}`, { key: t.key });
    assert.equal(f.status, 200);
    assert.equal(f.body.status, 'processing');
    assert.equal(f.body.id, id);
  }
  for (const p of ['/api/v6/images/fetch', '/api/v1/enterprise/fetch']) {
    const f = await t.post(p, { key: t.key, request_id: String(id) });
    assert.equal(f.body.id, id);
  }
  isError(await t.post('/api/v6/images/fetch/999999', { key: t.key }), 404, /not found/);
  isError(await t.post('/api/v6/images/fetch', { key: t.key, request_id: 'abc' }), 400, /request_id must be a positive integer/);
  // The admin key sees every job.
  assert.equal((await t.post(`/api/v6/images/fetch/${id}`, { key: t.adminKey })).body.id, id);
});

test('validation errors are 400 naming field and rule', async () => {
  isError(await gen({ key: t.key, width: 1004 }), 400, /^width must be a multiple of 8 between 64 and 1024$/);
  isError(await gen({ key: t.key, controlnet_model: 'foo' }), 400, /controlnet_model must be a comma list of/);
  isError(await gen({ key: t.key, init_image: null }), 400, /init_image or control_image is required/);
  isError(await gen({ key: t.key, webhook: 'http://169.254.169.254/hook' }), 400, /webhook must be a public http or https URL/);
  isError(await gen({ key: t.key, webhook: 'http://[::1]:80/hook' }), 400, /webhook must be a public http or https URL/);
  isError(await t.post('/api/v5/controlnet', '{"key": ', {}), 400, /valid JSON/);
  isError(await t.post('/api/v5/controlnet', `[1,2]`, { authorization: `Bearer ${t.key}` }), 400, /must be a JSON object/);
});

test('a model that is not installed → 422 naming it', async () => {
  isError(await gen({ key: t.key, model_id: 'nope-model' }), 422, /model_id "nope-model" is not installed/);
  isError(await gen({ key: t.key, controlnet_model: 'canny,openpose' }), 422, /controlnet_model "openpose" is not installed/);
  isError(await gen({ key: t.key, lora_model: 'style-x' }), 422, /lora_model "style-x" is not installed/);
  isError(await gen({ key: t.key, vae: 'vae-x' }), 422, /vae "vae-x" is not installed/);
  isError(await gen({ key: t.key, controlnet_model: 'depth', auto_hint: 'yes' }), 422, /auto_hint for depth needs the annotator model file annotator\/midas\/dpt_hybrid-midas-501f0c75\.pt in the models folder, which is not installed; get it from hf:lllyasviel\/Annotators dpt_hybrid-midas-501f0c75\.pt/);
  assert.equal((await gen({ key: t.key, controlnet_model: 'canny', auto_hint: 'yes' })).status, 200, 'canny needs no model');
});

test('a body beyond the limit → 413; unknown routes → 404 error body', async () => {
  const res = await fetch(`${t.url}/api/v6/images/controlnet`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: `{"key":"x","init_image":"${'A'.repeat(97 * 1024 * 1024)}"}` });
  assert.equal(res.status, 413);
  assert.equal((await res.json()).status, 'error');
  isError(await t.post('/api/v9/nothing', {}), 404, /no route/);
});

test('GET /, /openapi.json, /health, /metrics', async () => {
  const page = await fetch(`${t.url}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /ControlNet playground/);
  const doc = await (await fetch(`${t.url}/openapi.json`)).json();
  assert.equal(doc.openapi, '3.1.0');
  assert.equal(doc.components.schemas.ControlNetRequestInput.properties.width.default, 512);
  assert.ok(doc.paths['/api/v6/images/fetch/{id}']);
  const health = await (await fetch(`${t.url}/health`)).json();
  assert.equal(health.status, 'ok');
  const metrics = await (await fetch(`${t.url}/metrics`)).text();
  assert.match(metrics, /controlnet_queue_jobs\{state="queued"\} \d+/);
  assert.match(metrics, /controlnet_http_seconds_bucket/);
  assert.match(metrics, /controlnet_step_seconds/);
});

test('image links: unknown or badly signed → 404', async () => {
  assert.equal((await fetch(`${t.url}/outputs/nope-0.png`)).status, 404);
  assert.equal((await fetch(`${t.url}/outputs/temp/nope-0.png?expires=99999999999999&signature=abc`)).status, 404);
  assert.equal((await fetch(`${t.url}/outputs/..%2Fcontrolnet.db`)).status, 404);
});
