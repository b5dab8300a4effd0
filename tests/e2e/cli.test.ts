// The `controlnet` command end to end: first start installs the demo model and serves; `generate` writes PNGs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

const run = promisify(execFile);

test('serve on first start: installs the shapes demo as the default, prints an admin key, generates', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-serve-'));
  const child = spawn(process.execPath, ['bin/controlnet.js', 'serve', '--data-dir', dir, '--port', '0'], {
    env: { ...process.env, LOG_LEVEL: 'info', ENGINE_THREADS: '1', WAIT_WINDOW_MS: '120000' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let out = '';
    const { url, key } = await new Promise<{ url: string; key: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start: ${out}`)), 60_000);
      child.stdout.on('data', (c) => {
        out += c;
        const k = /created admin key (\S+)/.exec(out);
        const u = /"url":"(http[^"]+)"/.exec(out);
        if (k && u) { clearTimeout(timer); resolve({ url: u[1]!, key: k[1]! }); }
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const health = await (await fetch(`${url}/health`)).json();
    assert.equal(health.default_model_id, 'shapes-demo');
    const img = (await sharp({ create: { width: 128, height: 128, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toBuffer()).toString('base64');
    const post = (body: object) => fetch(`${url}/api/v6/images/controlnet`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body) }).then((r) => r.json());
    const body = await post({ prompt: 'a red circle on a blue background', controlnet_model: 'canny', init_image: img, width: 128, height: 128, num_inference_steps: 2 });
    assert.equal(body.status, 'success', JSON.stringify(body));
    assert.equal(body.meta.model_id, 'shapes-demo');
    // the demo has trained ControlNets for canny and scribble only: another type is honestly not installed
    const other = await post({ prompt: 'a red circle', controlnet_model: 'depth', init_image: img, width: 128, height: 128 });
    assert.equal(other.status, 'error', JSON.stringify(other));
    assert.match(JSON.stringify(other), /controlnet_model \\"depth\\" is not installed/);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('generate writes PNGs from a local image file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-gen-'));
  try {
    const { createDemoModels } = await import('../../src/engine/models/demo.ts');
    await createDemoModels(join(dir, 'models'), { baseId: 'tiny-demo', types: ['canny'] });
    const input = join(dir, 'in.png');
    writeFileSync(input, await sharp({ create: { width: 80, height: 80, channels: 3, background: { r: 9, g: 9, b: 9 } } }).png().toBuffer());
    const out = join(dir, 'out');
    const { stdout } = await run(process.execPath, ['bin/controlnet.js', 'generate', '--data-dir', dir, '-c', 'canny', '-i', input,
      '-W', '64', '-H', '64', '-s', '2', '--samples', '2', '--seed', '5', '-o', out], { env: { ...process.env, ENGINE_THREADS: '1' } });
    assert.deepEqual(readdirSync(out).sort(), ['5-0.png', '5-1.png']);
    assert.match(stdout, /"seed":5/);
    const m = await sharp(join(out, '5-0.png')).metadata();
    assert.equal(m.width, 64);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hint writes the auto_hint maps of several types', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-hint-cli-'));
  try {
    const input = join(dir, 'in.png');
    writeFileSync(input, await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 0, g: 0, b: 0 } } })
      .composite([{ input: Buffer.from('<svg width="64" height="64"><circle cx="32" cy="32" r="16" fill="white"/></svg>') }]).png().toBuffer());
    const out = join(dir, 'out');
    const { stdout } = await run(process.execPath, ['bin/controlnet.js', 'hint', '--data-dir', dir, '-c', 'canny,tile,qrcode', '-i', input,
      '-W', '64', '-H', '64', '-o', out], { env: { ...process.env, ENGINE_THREADS: '1' } });
    assert.deepEqual(readdirSync(out).sort(), ['hint-canny.png', 'hint-qrcode.png', 'hint-tile.png']);
    assert.match(stdout, /hint-canny\.png/);
    const { data } = await sharp(join(out, 'hint-canny.png')).raw().toBuffer({ resolveWithObject: true });
    assert.ok(data.some((v) => v === 255) && data.some((v) => v === 0), 'the canny map has edges and background');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('serve --no-worker with a separate `controlnet worker` process on the same DATA_DIR; CONTROLNET_API_KEY works', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-split-'));
  const { createDemoModels } = await import('../../src/engine/models/demo.ts');
  await createDemoModels(join(dir, 'models'), { baseId: 'tiny-demo', types: ['canny'] });
  const env = { ...process.env, LOG_LEVEL: 'info', ENGINE_THREADS: '1', WAIT_WINDOW_MS: '60000', CONTROLNET_API_KEY: 'operator-key-0123456789abcdef' };
  const server = spawn(process.execPath, ['bin/controlnet.js', 'serve', '--no-worker', '--data-dir', dir, '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const worker = spawn(process.execPath, ['bin/controlnet.js', 'worker', '--data-dir', dir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start: ${out}`)), 60_000);
      server.stdout.on('data', (c) => {
        out += c;
        const u = /"url":"(http[^"]+)"/.exec(out);
        if (u) { clearTimeout(timer); resolve(u[1]!); }
      });
    });
    assert.doesNotMatch(out, /created admin key/, 'CONTROLNET_API_KEY counts as a key');
    const img = (await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toBuffer()).toString('base64');
    const res = await fetch(`${url}/api/v6/images/controlnet`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'operator-key-0123456789abcdef', controlnet_model: 'canny', init_image: img, width: 64, height: 64,
        num_inference_steps: 2, temp: 'yes' }) });
    const body = await res.json();
    assert.equal(body.status, 'success', JSON.stringify(body));
    // Signed by the worker process, verified by the server: the link secret is shared through DATA_DIR.
    assert.equal((await fetch(body.output[0])).status, 200);
    const sys = await fetch(`${url}/api/v1/enterprise/system_details`, { method: 'POST', headers: { authorization: 'Bearer operator-key-0123456789abcdef' } });
    assert.equal(sys.status, 200, 'the operator key is an admin key');
  } finally {
    for (const c of [server, worker]) {
      c.kill('SIGTERM');
      await new Promise((r) => c.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
