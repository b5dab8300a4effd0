import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ModelsFolder } from '../../src/storage/models-folder.ts';
import { ModelDownloader } from '../../src/storage/model-download.ts';
import { startHub } from './hub-server.ts';

const weights = randomBytes(200_000);
const config = Buffer.from('{"in_channels":4}');

test('hub repo download: listing, files, checksum, resume with Range, and the folder is usable only when complete', async () => {
  const hub = await startHub({
    'acme/tiny-cn': [{ name: 'config.json', data: config }, { name: 'diffusion_pytorch_model.safetensors', data: weights, lfs: true },
      { name: 'diffusion_pytorch_model.bin', data: Buffer.from('skip me') }],
    'acme/broken': [{ name: 'model.safetensors', data: weights, lfs: true, badSha: true }],
  });
  const dir = mkdtempSync(join(tmpdir(), 'cn-dl-'));
  try {
    const folder = new ModelsFolder(dir);
    const dl = new ModelDownloader(folder, { hfEndpoint: hub.url, fetch: { allow: ['127.0.0.1'] } });
    // A previous download stopped half-way: the partial file is continued, not restarted.
    const target = join(dir, 'controlnet', 'canny');
    mkdirSync(target, { recursive: true });
    writeFileSync(join(target, '.incomplete'), '');
    writeFileSync(join(target, 'diffusion_pytorch_model.safetensors.part'), weights.subarray(0, 120_000));
    assert.equal(folder.installed('controlnet', 'canny'), false);
    const st = await dl.start({ kind: 'controlnet', id: 'canny', source: 'acme/tiny-cn' });
    assert.equal(st.status, 'done', st.error);
    assert.deepEqual(readFileSync(join(target, 'diffusion_pytorch_model.safetensors')), weights);
    assert.deepEqual(readFileSync(join(target, 'config.json')), config);
    assert.equal(existsSync(join(target, 'diffusion_pytorch_model.bin')), false, '.bin skipped when safetensors exist');
    assert.ok(folder.installed('controlnet', 'canny'));
    const ranged = hub.requests.find((r) => r.url.endsWith('.safetensors'));
    assert.equal(ranged?.range, 'bytes=120000-');
    assert.equal(st.bytes, weights.length + config.length);
    assert.equal(st.totalBytes, weights.length + config.length);

    const bad = await dl.start({ kind: 'base', id: 'broken', source: 'acme/broken' });
    assert.equal(bad.status, 'failed');
    assert.match(bad.error!, /sha256 mismatch/);
    assert.equal(folder.installed('base', 'broken'), false);

    const missing = await dl.start({ kind: 'base', id: 'nope', source: 'acme/nope' });
    assert.match(missing.error!, /not found \(HTTP 404\)/);
  } finally {
    hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('direct URL download with a caller checksum; private URLs refused without allowlist', async () => {
  const hub = await startHub({ 'acme/lora': [{ name: 'style.safetensors', data: weights }] });
  const dir = mkdtempSync(join(tmpdir(), 'cn-dl-'));
  try {
    const folder = new ModelsFolder(dir);
    const sha = (await import('node:crypto')).createHash('sha256').update(weights).digest('hex');
    const dl = new ModelDownloader(folder, { hfEndpoint: hub.url, fetch: { allow: ['127.0.0.1'] } });
    const url = `${hub.url}/acme/lora/resolve/main/style.safetensors`;
    const ok = await dl.start({ kind: 'lora', id: 'style', source: url, sha256: sha });
    assert.equal(ok.status, 'done', ok.error);
    assert.deepEqual(readFileSync(join(dir, 'lora', 'style.safetensors')), weights);
    assert.ok(folder.installed('lora', 'style'));
    const wrong = await dl.start({ kind: 'lora', id: 'style2', source: url, sha256: '0'.repeat(64) });
    assert.match(wrong.error!, /sha256 mismatch/);
    const strict = new ModelDownloader(folder, { hfEndpoint: hub.url });
    const refused = await strict.start({ kind: 'lora', id: 'style3', source: url });
    assert.match(refused.error!, /not a public address/);
    const nonsense = await strict.start({ kind: 'lora', id: 'x', source: '../../etc' });
    assert.match(nonsense.error!, /neither an http\(s\) URL nor a hub repository id/);
  } finally {
    hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
