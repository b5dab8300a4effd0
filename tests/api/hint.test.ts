// The hint endpoint: the maps auto_hint computes, through a real server and the engine thread on the demo models.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import pino from 'pino';
import { loadConfig } from '../../src/config.ts';
import { createApp, type App } from '../../src/api/app.ts';
import { createDemoModels } from '../../src/engine/models/demo.ts';
import { engineFactory } from '../../src/worker/engine-factory.ts';

let dataDir: string;
let app: App;
let url: string;
let key: string;
let image: string;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cn-hint-'));
  await createDemoModels(join(dataDir, 'models'), { baseId: 'tiny-demo', types: ['canny', 'depth'] });
  const cfg = loadConfig({ LOG_LEVEL: 'silent' }, { dataDir, port: 0, host: '127.0.0.1', engineThreads: 1, rateLimitPerMinute: 10_000 });
  app = await createApp(cfg, { engine: engineFactory(cfg), logger: pino({ level: 'silent' }) });
  key = app.ctx.keys.create().key;
  url = await app.listen();
  image = (await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .composite([{ input: Buffer.from('<svg width="64" height="64"><rect x="16" y="16" width="32" height="32" fill="white"/></svg>') }])
    .png().toBuffer()).toString('base64');
});
after(async () => {
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function post(path: string, body: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

test('canny hint: the edges of a white square, as a PNG link and as base64', async () => {
  const r = await post('/api/v6/images/controlnet/hint', { key, controlnet_model: 'canny', init_image: image, width: 64, height: 64 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.status, 'success');
  const png = Buffer.from(await (await fetch(r.body.output[0])).arrayBuffer());
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height], [64, 64]);
  const at = (x: number, y: number) => data[(y * 64 + x) * info.channels]!;
  assert.equal(at(15, 32), 255, 'edge on the left side of the square (where OpenCV non-maximum suppression puts it)');
  assert.equal(at(47, 32), 255, 'edge on the right side');
  assert.equal(at(32, 32), 0, 'no edge inside the square');
  assert.equal(at(4, 4), 0, 'no edge in the background');
  const b = await post('/api/v1/enterprise/hint', { key, controlnet_model: 'canny', init_image: image, width: 64, height: 64, base64: 'yes' });
  assert.ok(Buffer.from(b.body.output[0], 'base64').equals(png), 'the same map as base64');
});

test('a neural type without its annotator model is a 422 naming the file; bad input is a 400; no key is a 401', async () => {
  const r = await post('/api/v6/images/controlnet/hint', { key, controlnet_model: 'depth', init_image: image, width: 64, height: 64 });
  assert.equal(r.status, 422);
  assert.match(r.body.message, /annotator.*\.onnx/);
  assert.equal((await post('/api/v6/images/controlnet/hint', { key, controlnet_model: 'canny', init_image: image, width: 65 })).status, 400);
  assert.equal((await post('/api/v6/images/controlnet/hint', { key: 'nope', controlnet_model: 'canny', init_image: image })).status, 401);
});
