// The hosted API's official clients against our server, changed only in where they point: modelslab-py's
// controlnet, text_to_image and image_to_image (v6 images and enterprise images paths, each polled through the
// client's own fetch) and modelslab-cli's `generate fetch` and `generate image` (v7 paths, key also in a `key`
// header). Both are pip-installed, pinned, into a virtualenv this test creates (reused while its pins match), as
// a user would install them. Without python3's venv module it apt-gets python3-venv (as root, as CI runs); if the
// virtualenv or PyPI still fails, the test fails saying so: it never skips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import pino from 'pino';
import { loadConfig } from '../../src/config.ts';
import { createApp, type App } from '../../src/api/app.ts';
import { createDemoModels } from '../../src/engine/models/demo.ts';
import { engineFactory } from '../../src/worker/engine-factory.ts';
import { successSchema } from '../../src/api/responses.ts';

const REQUIREMENTS = new URL('./modelslab-clients-requirements.txt', import.meta.url);
const DRIVER = new URL('./modelslab_clients.py', import.meta.url);
const VENV = process.env.MODELSLAB_CLIENTS_VENV ?? join(homedir(), '.cache', 'controlnet-modelslab-clients-venv');

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024 });
  return { ok: r.status === 0, status: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** Runs a client without blocking this process's event loop (the server under test lives in it). */
function runAsync(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ReturnType<typeof run>> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 300_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', (e) => (stderr += String(e)));
    child.on('close', (status, signal) => resolve({ ok: status === 0, status, stdout, stderr: signal ? `${stderr}\nkilled by ${signal}` : stderr }));
  });
}

/** The client virtualenv with exactly the pinned requirements; throws with what to install when it cannot be made. */
function clientVenv(): { python: string; cli: string } {
  const python = join(VENV, 'bin', 'python');
  const cli = join(VENV, 'bin', 'modelslab');
  const wanted = readFileSync(REQUIREMENTS, 'utf8');
  const marker = join(VENV, '.requirements.txt');
  if (existsSync(marker) && readFileSync(marker, 'utf8') === wanted && existsSync(python) && existsSync(cli)) return { python, cli };
  rmSync(VENV, { recursive: true, force: true });
  mkdirSync(join(VENV, '..'), { recursive: true });
  let py = run('python3', ['-m', 'venv', VENV]);
  if (!py.ok) {
    // Debian splits the venv module off (python3-venv); the tests run as root in CI and apt reaches the registries.
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => run('apt-get', ['install', '-y', 'python3', 'python3-venv'], { env });
    if (!install().ok) {
      run('apt-get', ['update'], { env });
      install();
    }
    rmSync(VENV, { recursive: true, force: true });
    py = run('python3', ['-m', 'venv', VENV]);
  }
  if (!py.ok) {
    throw new Error(`cannot create the client virtualenv with "python3 -m venv ${VENV}", even after "apt-get install -y python3 python3-venv": ${py.stderr.trim()}`);
  }
  const pip = run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '-r', REQUIREMENTS.pathname]);
  if (!pip.ok) throw new Error(`pip could not install ${REQUIREMENTS.pathname} from PyPI into ${VENV}:\n${pip.stderr.slice(-3000)}`);
  writeFileSync(marker, wanted);
  return { python, cli };
}

let venv: { python: string; cli: string };
let app: App;
let url: string;
let key: string;
let dataDir: string;
let png: string;
before(async () => {
  venv = clientVenv();
  dataDir = mkdtempSync(join(tmpdir(), 'cn-clients-'));
  await createDemoModels(join(dataDir, 'models'), { baseId: 'tiny-demo', types: ['canny'] });
  const cfg = loadConfig({ LOG_LEVEL: 'silent' }, { dataDir, port: 0, host: '127.0.0.1', engineThreads: 1, rateLimitPerMinute: 10_000, waitWindowMs: 200 });
  app = await createApp(cfg, { engine: engineFactory(cfg), logger: pino({ level: 'silent' }) });
  key = app.ctx.keys.create().key;
  url = await app.listen();
  png = (await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 40, b: 40 } } })
    .composite([{ input: Buffer.from('<svg width="64" height="64"><rect x="16" y="16" width="32" height="32" fill="white"/></svg>') }])
    .png().toBuffer()).toString('base64');
});
after(async () => {
  await app?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** An output link answers with a PNG of the requested size. */
async function assertPng(link: string): Promise<void> {
  const res = await fetch(link);
  assert.equal(res.status, 200, link);
  const m = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
  assert.equal(m.format, 'png');
  assert.equal(m.width, 64);
}

test('modelslab-py: controlnet, text_to_image and image_to_image succeed by base URL (v6 and enterprise paths)', async () => {
  const r = await runAsync(venv.python, [DRIVER.pathname, url, key, png, 'tiny-demo'], { timeoutMs: 300_000 });
  assert.ok(r.ok, `the client failed (exit ${r.status}):\n${r.stderr.slice(-3000)}`);
  const results = JSON.parse(r.stdout) as Record<string, any>;
  assert.deepEqual(Object.keys(results).sort(), ['enterprise.controlnet', 'enterprise.image_to_image', 'enterprise.text_to_image',
    'v6.controlnet', 'v6.image_to_image', 'v6.text_to_image']);
  for (const [call, answer] of Object.entries(results)) {
    assert.equal(answer.status, 'success', `${call}: ${JSON.stringify(answer).slice(0, 500)}`);
    successSchema.parse(answer);
    await assertPng(answer.output[0]);
  }
  assert.equal(results['v6.controlnet'].meta.controlnet_model, 'canny');
  assert.equal(results['v6.text_to_image'].meta.controlnet_model, null);
  assert.equal(results['v6.text_to_image'].meta.mode, 'txt2img');
  assert.equal(results['v6.image_to_image'].meta.mode, 'img2img');
  assert.equal(results['v6.image_to_image'].meta.strength, 0.6);
});

test('modelslab-cli: generate image (v7, polled) and generate fetch download the image', async () => {
  const home = mkdtempSync(join(tmpdir(), 'cn-cli-home-'));
  const out = join(home, 'generated');
  try {
    const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config') };
    const cli = (...args: string[]) => runAsync(venv.cli, ['--base-url', url, '--api-key', key, '--no-update-check', '-o', 'json', ...args], { env, timeoutMs: 300_000 });
    const gen = await cli('generate', 'image', '--model', 'tiny-demo', '--prompt', 'a lighthouse', '--width', '64', '--height', '64', '--steps', '2', '--output-dir', out);
    assert.ok(gen.ok, `generate image failed (exit ${gen.status}):\n${gen.stdout.slice(-2000)}\n${gen.stderr.slice(-2000)}`);
    const answer = JSON.parse(gen.stdout.slice(gen.stdout.indexOf('{')));
    assert.equal(answer.status, 'success', JSON.stringify(answer).slice(0, 500));
    assert.equal(readdirSync(out).filter((f) => f.endsWith('.png')).length, 1);
    rmSync(out, { recursive: true, force: true });
    const fetched = await cli('generate', 'fetch', '--id', String(answer.id), '--output-dir', out);
    assert.ok(fetched.ok, `generate fetch failed (exit ${fetched.status}):\n${fetched.stdout.slice(-2000)}\n${fetched.stderr.slice(-2000)}`);
    const f = JSON.parse(fetched.stdout.slice(fetched.stdout.indexOf('{')));
    assert.equal(f.id, answer.id);
    assert.equal(f.status, 'success');
    const files = readdirSync(out).filter((n) => n.endsWith('.png'));
    assert.equal(files.length, 1);
    assert.equal((await sharp(join(out, files[0]!)).metadata()).width, 64);
    // An unknown id: the CLI reports the server's error instead of hanging.
    const missing = await cli('generate', 'fetch', '--id', '987654', '--output-dir', out);
    assert.ok(!missing.ok, 'an unknown id fails');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
