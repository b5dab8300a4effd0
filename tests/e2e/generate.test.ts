// End to end on loopback: real server, real SQLite, real engine (worker thread) on the tiny demo models.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config.ts';
import { createApp, type App } from '../../src/api/app.ts';
import { createDemoModels } from '../../src/engine/models/demo.ts';
import { engineFactory } from '../../src/worker/engine-factory.ts';
import { SIGNATURE_HEADER, signBody } from '../../src/worker/webhooks.ts';

const DAY = 24 * 3600 * 1000;
let dataDir: string;
let images: http.Server;
let imageBase: string;
const hooks: { body: any; sig?: string }[] = [];
let clock = Date.now();

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cn-e2e-'));
  await createDemoModels(join(dataDir, 'models'), { baseId: 'tiny-demo', types: ['canny', 'depth', 'inpaint'] });
  const png = await sharp({ create: { width: 96, height: 80, channels: 3, background: { r: 10, g: 200, b: 30 } } })
    .composite([{ input: Buffer.from('<svg width="96" height="80"><rect x="20" y="20" width="40" height="30" fill="white"/></svg>') }]).png().toBuffer();
  images = http.createServer((req, res) => {
    if (req.url === '/img.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(png);
    if (req.url === '/hook') {
      let b = '';
      req.on('data', (c) => (b += c));
      req.on('end', () => { hooks.push({ body: JSON.parse(b), sig: req.headers[SIGNATURE_HEADER] as string }); res.end('ok'); });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => images.listen(0, '127.0.0.1', r));
  imageBase = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
});
after(() => {
  images.closeAllConnections();
  images.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function config(extra: Partial<Config> = {}): Config {
  return loadConfig({ LOG_LEVEL: 'silent' }, { dataDir, port: 0, host: '127.0.0.1', allowPrivateHosts: ['127.0.0.1'], engineThreads: 1,
    webhookSecret: 'whsec', webhookBaseDelayMs: 100, rateLimitPerMinute: 10_000, linkSecret: 'fixed', ...extra });
}

async function start(extra: Partial<Config> = {}, withEngine = true): Promise<{ app: App; url: string; key: string }> {
  const cfg = config(extra);
  const app = await createApp(cfg, { engine: withEngine ? engineFactory(cfg) : undefined, logger: pino({ level: 'silent' }), now: () => clock });
  const key = app.ctx.keys.create().key;
  return { app, url: await app.listen(), key };
}

async function post(url: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

const small = { controlnet_model: 'canny', width: '64', height: '64', num_inference_steps: '2', prompt: 'a red house' };

async function pngSize(buf: Buffer): Promise<[number, number]> {
  const m = await sharp(buf).metadata();
  return [m.width!, m.height!];
}

test('success within the wait window: output links serve PNGs, meta echoes the applied settings, seed reproduces', async () => {
  const s = await start({ waitWindowMs: 120_000 });
  try {
    const body = { key: s.key, ...small, init_image: `${imageBase}/img.png`, seed: 1234, samples: 2, track_id: 'T1', webhook: `${imageBase}/hook` };
    const r = await post(`${s.url}/api/v6/images/controlnet`, body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.status, 'success');
    assert.equal(r.body.output.length, 2);
    assert.deepEqual(r.body.output, r.body.proxy_links);
    assert.equal(typeof r.body.generationTime, 'number');
    assert.equal(r.body.nsfw_content_detected, false);
    const m = r.body.meta;
    assert.equal(m.seed, 1234); assert.equal(m.W, 64); assert.equal(m.H, 64); assert.equal(m.steps, 2); assert.equal(m.n_samples, 2);
    assert.equal(m.model_id, 'tiny-demo'); assert.equal(m.controlnet_model, 'canny'); assert.equal(m.init_image, `${imageBase}/img.png`);
    // the extras' defaults on the quick-start server: the embedded safety checker ran; no translator or prompt
    // enhancer is installed, and meta says so instead of claiming them
    assert.equal(m.safety_checker, 'yes'); assert.match(m.safety_checker_model, /^nsfwjs-mobilenet_v2/);
    assert.equal(m.upscale, 'no'); assert.equal(m.enhance_prompt, 'unavailable'); assert.equal(m.prompt, 'a red house');
    assert.ok(['yes', 'unavailable'].includes(m.multi_lingual) && typeof m.prompt_language === 'string');
    const first = Buffer.from(await (await fetch(r.body.output[0])).arrayBuffer());
    assert.deepEqual(await pngSize(first), [64, 64]);
    // upscale: yes on the embedded upscaler gives exactly 2× the size; safety_checker: no skips the check
    const up = await post(`${s.url}/api/v6/images/controlnet`, { ...body, webhook: null, samples: 1, upscale: 'yes', safety_checker: 'no', multi_lingual: 'no', enhance_prompt: 'no' });
    assert.equal(up.status, 200, JSON.stringify(up.body));
    assert.deepEqual(await pngSize(Buffer.from(await (await fetch(up.body.output[0])).arrayBuffer())), [128, 128]);
    assert.equal(up.body.meta.upscale, 'yes'); assert.equal(up.body.meta.upscale_factor, 2); assert.equal(up.body.meta.safety_checker, 'no');
    assert.equal(up.body.meta.multi_lingual, 'no'); assert.equal(up.body.meta.enhance_prompt, 'no');
    // The same seed and settings give the same picture.
    const again = await post(`${s.url}/api/v5/controlnet`, { ...body, webhook: null });
    const second = Buffer.from(await (await fetch(again.body.output[0])).arrayBuffer());
    assert.ok(first.equals(second), 'same seed, same PNG');
    const other = await post(`${s.url}/api/v5/controlnet`, { ...body, webhook: null, seed: 1235, samples: 1 });
    const third = Buffer.from(await (await fetch(other.body.output[0])).arrayBuffer());
    assert.ok(!first.equals(third), 'another seed, another PNG');
    // The webhook: success body plus track_id, signed.
    for (let i = 0; i < 50 && hooks.length === 0; i++) await new Promise((res) => setTimeout(res, 100));
    const h = hooks.find((x) => x.body.id === r.body.id)!;
    assert.equal(h.body.status, 'success');
    assert.equal(h.body.track_id, 'T1');
    assert.deepEqual(h.body.output, r.body.output);
    assert.equal(h.sig, signBody('whsec', JSON.stringify(h.body)));
  } finally {
    await s.app.close();
  }
});

test('processing → fetch → success; base64 outputs; temp links expire after 24 h (404)', async () => {
  const s = await start({ waitWindowMs: 0 });
  try {
    const r = await post(`${s.url}/api/v6/images/controlnet`, { key: s.key, ...small, init_image: `${imageBase}/img.png`, temp: 'yes' });
    assert.equal(r.body.status, 'processing');
    let f = r;
    for (let i = 0; i < 600 && f.body.status === 'processing'; i++) {
      await new Promise((res) => setTimeout(res, 100));
      f = await post(r.body.fetch_result, { key: s.key });
    }
    assert.equal(f.body.status, 'success', JSON.stringify(f.body));
    assert.deepEqual(f.body.output, r.body.future_links, 'future_links are the final links');
    const link = f.body.output[0] as string;
    assert.match(link, /\/outputs\/temp\//);
    assert.equal((await fetch(link)).status, 200);
    clock += DAY + 1000;
    assert.equal((await fetch(link)).status, 404, 'expired temporary link');
    clock -= DAY + 1000;

    const b = await post(`${s.url}/api/v6/images/controlnet`, { key: s.key, ...small, init_image: `${imageBase}/img.png`, base64: 'yes' });
    let fb = b;
    for (let i = 0; i < 600 && fb.body.status === 'processing'; i++) {
      await new Promise((res) => setTimeout(res, 100));
      fb = await post(b.body.fetch_result, { key: s.key });
    }
    assert.equal(fb.body.status, 'success');
    assert.deepEqual(await pngSize(Buffer.from(fb.body.output[0], 'base64')), [64, 64]);
  } finally {
    await s.app.close();
  }
});

test('multi-ControlNet with a control_image list, and inpainting with a mask', async () => {
  const s = await start({ waitWindowMs: 120_000 });
  try {
    const url = `${imageBase}/img.png`;
    const multi = await post(`${s.url}/api/v6/images/controlnet`, { key: s.key, ...small, controlnet_model: 'canny,depth',
      control_image: `${url},${url}`, controlnet_conditioning_scale: '0.5,1' });
    assert.equal(multi.body.status, 'success', JSON.stringify(multi.body));
    assert.deepEqual(multi.body.meta.controlnet_conditioning_scale, [0.5, 1]);
    const inpaint = await post(`${s.url}/api/v6/images/controlnet`, { key: s.key, ...small, controlnet_model: 'inpaint',
      init_image: url, mask_image: url, strength: 1 });
    assert.equal(inpaint.body.status, 'success', JSON.stringify(inpaint.body));
  } finally {
    await s.app.close();
  }
});

test('an input that cannot be fetched fails the job with 400, and the webhook says failed', async () => {
  const s = await start({ waitWindowMs: 120_000 });
  try {
    const r = await post(`${s.url}/api/v6/images/controlnet`, { key: s.key, ...small, init_image: `${imageBase}/missing.png`,
      webhook: `${imageBase}/hook`, track_id: 99 });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /init_image could not be fetched: HTTP 404/);
    for (let i = 0; i < 50 && !hooks.some((h) => h.body.track_id === 99); i++) await new Promise((res) => setTimeout(res, 100));
    const h = hooks.find((x) => x.body.track_id === 99)!;
    assert.deepEqual(Object.keys(h.body).sort(), ['id', 'message', 'status', 'track_id']);
    assert.equal(h.body.status, 'failed');
    const f = await post(`${s.url}/api/v6/images/fetch/${r.body.id}`, { key: s.key });
    assert.equal(f.status, 400);
  } finally {
    await s.app.close();
  }
});

test('restart with queued jobs: a job left running and the queued ones all finish', async () => {
  const first = await start({ waitWindowMs: 0 }, false);
  const ids: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await post(`${first.url}/api/v5/controlnet`, { key: first.key, ...small, init_image: `${imageBase}/img.png`, seed: i });
    ids.push(r.body.id);
  }
  // "running" when the process died; its lease (0.5 s) expires and the next process takes it back
  assert.equal((await first.app.ctx.queue.moveToActive({ worker: 'a-worker-that-dies', lockMs: 500 }))!.job.id, ids[0]);
  await first.app.close();
  clock += 1000; // the dead worker's lease has expired
  const second = await start({ waitWindowMs: 0 });
  try {
    for (const id of ids) {
      const job = await second.app.ctx.queue.waitUntilFinished(id, 120_000);
      assert.equal(job!.status, 'success', `${id}: ${job?.error}`);
      assert.equal(job!.result!.meta.seed, ids.indexOf(id));
    }
    const f = await post(`${second.url}/api/v6/images/fetch/${ids[0]}`, { key: first.key });
    assert.equal(f.body.status, 'success');
  } finally {
    await second.app.close();
  }
});
