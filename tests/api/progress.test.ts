// The progress stream (SSE): each event is what a fetch answers at that moment, plus the recorded step. The server
// runs no engine here; the job is moved along with the queue's own calls, the ones the worker makes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, tinyPngBase64, type TestApp } from './harness.ts';

let t: TestApp;
let image: string;

before(async () => {
  t = await startTestApp({ config: { waitWindowMs: 0 } });
  image = await tinyPngBase64();
});
after(async () => t.close());

/** Reads SSE events from a response body, one { event, data } at a time. */
async function* events(res: Response): AsyncGenerator<{ event: string; data: any }> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (data) yield { event: /^event: (.*)$/m.exec(block)?.[1] ?? 'message', data: JSON.parse(data) };
    }
  }
}

const open = (id: number, key = t.key) => fetch(`${t.url}/api/v6/images/controlnet/progress/${id}`, { headers: { authorization: `Bearer ${key}` } });
const fetchBody = async (id: number) => (await t.post(`/api/v6/images/fetch/${id}`, { key: t.key })).body;
const withoutStep = ({ step: _s, total_steps: _t, ...rest }: any) => rest;

/**
 * An event equals the fetch answer taken right after it, except that the eta (seconds, one decimal) runs down with
 * the clock while the job sits in a phase: the fetch's eta may be lower by at most the time between the event's
 * arrival and the fetch's answer, plus 0.2 s (0.1 s rounding and the event's way from the server before it was
 * read), and never higher but for the rounding.
 */
async function assertSameAsFetch(data: any, id: number, message?: string): Promise<void> {
  const t0 = performance.now();
  const f = await fetchBody(id);
  const elapsedS = (performance.now() - t0) / 1000;
  const { eta: etaEvent, ...event } = withoutStep(data);
  const { eta: etaFetch, ...fetched } = f;
  assert.deepEqual(event, fetched, message);
  if (etaEvent === undefined || etaFetch === undefined) return assert.equal(etaEvent, etaFetch, message);
  const drop = etaEvent - etaFetch;
  assert.ok(drop >= -0.1 - 1e-9 && drop <= elapsedS + 0.2 + 1e-9, `${message ?? 'eta'}: event ${etaEvent} s, fetch ${etaFetch} s, ${elapsedS.toFixed(3)} s apart`);
}


/** Takes the queued job as a worker would and fails it (the queue's own verbs). */
async function failNow(id: number, message: string, httpStatus: number): Promise<void> {
  const active = await t.app.ctx.queue.moveToActive({ worker: 'test-worker', lockMs: 60_000 });
  assert.equal(active?.job.id, id);
  await t.app.ctx.queue.moveToFailed(id, active!.token, { message, httpStatus });
}

test('queued, then each recorded step, then done: every event equals the fetch answer of that moment', async () => {
  const r = await t.post('/api/v6/images/controlnet', { key: t.key, controlnet_model: 'canny', init_image: image, num_inference_steps: 20 });
  assert.equal(r.body.status, 'processing');
  const id: number = r.body.id;
  const res = await open(id);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
  const it = events(res);

  const first = (await it.next()).value!;
  assert.equal(first.event, 'progress');
  assert.equal(first.data.step, 0);
  assert.equal(first.data.total_steps, 20);
  await assertSameAsFetch(first.data, id);

  const q = t.app.ctx.queue;
  const active = (await q.moveToActive({ worker: 'test-worker', lockMs: 60_000 }))!;
  assert.equal(active.job.id, id);
  await q.updateProgress(id, active.token, 7, 20);
  let e = (await it.next()).value!;
  // The claim itself (running, step 0) may be seen before the step write; skip to the step.
  while (e.data.step === 0) e = (await it.next()).value!;
  assert.equal(e.event, 'progress');
  assert.deepEqual([e.data.step, e.data.total_steps], [7, 20]);
  await assertSameAsFetch(e.data, id, 'the same eta and body a fetch shows');

  await q.moveToCompleted(id, active.token, { output: ['x'], proxy_links: ['x'], nsfw_content_detected: false, generationTime: 1.5, meta: { seed: 3 } });
  const done = (await it.next()).value!;
  assert.equal(done.event, 'done');
  assert.equal(done.data.status, 'success');
  assert.deepEqual(withoutStep(done.data), await fetchBody(id));
  assert.equal((await it.next()).done, true, 'the stream ends after done');
});

test('a failed job ends the stream with the error body a fetch gives', async () => {
  const r = await t.post('/api/v6/images/controlnet', { key: t.key, controlnet_model: 'canny', init_image: image });
  const id: number = r.body.id;
  const it = events(await open(id));
  assert.equal((await it.next()).value!.event, 'progress');
  await failNow(id, 'width must be a multiple of 8', 400);
  const done = (await it.next()).value!;
  assert.equal(done.event, 'done');
  assert.equal(done.data.status, 'error');
  assert.equal(done.data.message, 'width must be a multiple of 8');
  assert.deepEqual(withoutStep(done.data), await fetchBody(id));
});

test('auth: no key 401, another key\'s job and an unknown id 404, a bad id 400, all as JSON errors', async () => {
  const r = await t.post('/api/v6/images/controlnet', { key: t.key, controlnet_model: 'canny', init_image: image });
  const id: number = r.body.id;
  const none = await fetch(`${t.url}/api/v6/images/controlnet/progress/${id}`);
  assert.equal(none.status, 401);
  assert.equal((await none.json()).status, 'error');
  const other = t.app.ctx.keys.create().key;
  const foreign = await open(id, other);
  assert.equal(foreign.status, 404);
  assert.match((await foreign.json()).message, new RegExp(`request ${id} not found`));
  assert.equal((await open(999_999)).status, 404);
  const bad = await fetch(`${t.url}/api/v6/images/controlnet/progress/abc`, { headers: { authorization: `Bearer ${t.key}` } });
  assert.equal(bad.status, 400);
  // The admin key sees any job (as fetch allows).
  const admin = await open(id, t.adminKey);
  assert.equal(admin.status, 200);
  await admin.body!.cancel();
  await failNow(id, 'done with this one', 500);
});

test('the enterprise path serves the same stream; a stream left open does not hold up the server\'s close', async () => {
  const t2 = await startTestApp({ config: { waitWindowMs: 0 } });
  const r = await t2.post('/api/v6/images/controlnet', { key: t2.key, controlnet_model: 'canny', init_image: image });
  const res = await fetch(`${t2.url}/api/v1/enterprise/images/progress/${r.body.id}`, { headers: { authorization: `Bearer ${t2.key}` } });
  assert.equal(res.status, 200);
  const it = events(res);
  assert.equal((await it.next()).value!.data.id, r.body.id);
  const started = Date.now();
  await t2.close();
  assert.ok(Date.now() - started < 5000, 'close() ended the open stream');
  assert.equal((await it.next()).done, true);
});

test('/playground/form.json: the request schema with its defaults and limits, the 15 types and which are installed', async () => {
  const res = await fetch(`${t.url}/playground/form.json`);
  assert.equal(res.status, 200);
  const form = await res.json();
  const p = form.request.properties;
  assert.deepEqual([p.width.minimum, p.width.maximum, p.width.multipleOf, p.width.default], [64, 1024, 8, 512]);
  assert.equal(p.num_inference_steps.default, 30);
  assert.equal(form.controlnet_types.length, 15);
  assert.deepEqual(form.installed_controlnets, ['canny', 'depth']);
  assert.equal(form.default_model_id, 'sd-test');
  assert.equal(form.endpoints.progress, '/api/v6/images/controlnet/progress/{id}');
  const page = await fetch(`${t.url}/`);
  assert.match(page.headers.get('content-type')!, /text\/html/);
  assert.match(await page.text(), /<input id="key" name="key"/);
  for (const a of ['playground.js', 'playground.css']) assert.equal((await fetch(`${t.url}/playground/${a}`)).status, 200);
});
