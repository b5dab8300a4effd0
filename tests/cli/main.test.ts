import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openDb } from '../../src/jobs/db.ts';
import { KeyStore } from '../../src/api/keys.ts';
import { startHub } from '../storage/hub-server.ts';
import { DEFAULT_CONTROLNET_REPOS } from '../../src/storage/default-models.ts';

const run = promisify(execFile);
const cli = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, ['bin/controlnet.js', ...args], { env: { ...process.env, LOG_LEVEL: 'silent', ...env } });

test('keys create prints a working key (admin flag kept, only the hash stored)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-cli-'));
  try {
    const { stdout } = await cli(['keys', 'create', '--admin', '--data-dir', dir]);
    const key = stdout.trim();
    assert.match(key, /^cn_[A-Za-z0-9_-]{43}$/);
    const db = openDb(dir);
    const k = new KeyStore(db).verifySync(key);
    assert.equal(k?.admin, true);
    assert.equal(readFileSync(join(dir, 'controlnet.db')).includes(Buffer.from(key)), false, 'the key itself is not stored');
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('models pull <type> downloads the default repo from HF_ENDPOINT; models list shows it', async () => {
  const weights = randomBytes(10_000);
  const hub = await startHub({ [DEFAULT_CONTROLNET_REPOS.canny]: [{ name: 'config.json', data: Buffer.from('{}') },
    { name: 'diffusion_pytorch_model.safetensors', data: weights, lfs: true }] });
  const dir = mkdtempSync(join(tmpdir(), 'cn-cli-'));
  try {
    const env = { HF_ENDPOINT: hub.url, ALLOW_PRIVATE_HOSTS: '127.0.0.1' };
    const pull = await cli(['models', 'pull', 'canny', '--data-dir', dir], env);
    assert.match(pull.stdout, /controlnet\/canny installed \(10002 bytes\)/);
    const list = await cli(['models', 'list', '--data-dir', dir]);
    assert.match(list.stdout, /^KIND\s+ID\s+SIZE\s+WEIGHTS$/m);
    assert.match(list.stdout, /^controlnet\s+canny\s+9\.8 KB\s+real$/m);
    await assert.rejects(cli(['models', 'pull', 'acme/none', '--data-dir', dir], env), /not found/);
  } finally {
    hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('keys list shows every key without its secret; keys revoke stops one at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-cli-'));
  try {
    const a = (await cli(['keys', 'create', '--admin', '--label', 'ops', '--data-dir', dir])).stdout.trim();
    const b = (await cli(['keys', 'create', '--data-dir', dir])).stdout.trim();
    const list = (await cli(['keys', 'list', '--data-dir', dir])).stdout;
    assert.match(list, /^ID\s+ADMIN\s+LABEL\s+CREATED \(UTC\)\s+STATE$/m);
    assert.match(list, /^1\s+admin\s+ops\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+active$/m);
    assert.match(list, /^2\s+\d{4}-.*active$/m);
    assert.ok(!list.includes(a) && !list.includes(b), 'no secret is shown');
    assert.match((await cli(['keys', 'revoke', '2', '--data-dir', dir])).stdout, /key 2 revoked/);
    const db = openDb(dir);
    const store = new KeyStore(db);
    assert.equal(await store.verify(b), undefined, 'the revoked key no longer works');
    assert.equal((await store.verify(a))?.id, 1);
    db.close();
    assert.match((await cli(['keys', 'list', '--data-dir', dir])).stdout, /^2\s+.*revoked$/m);
    await assert.rejects(cli(['keys', 'revoke', '2', '--data-dir', dir]), (e: { stderr: string }) => /^error: no active key with id 2\n$/.test(e.stderr));
    await assert.rejects(cli(['keys', 'revoke', 'x', '--data-dir', dir]), (e: { stderr: string }) => /key id must be a number/.test(e.stderr));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a too-short CONTROLNET_API_KEY is a one-line error, not a stack trace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-cli-'));
  try {
    await assert.rejects(cli(['serve', '--no-worker', '--port', '0', '--data-dir', dir], { CONTROLNET_API_KEY: 'short' }), (e: { stderr: string; code: number }) => {
      assert.equal(e.code, 1);
      assert.equal(e.stderr.trim().split('\n').length, 1, e.stderr);
      assert.match(e.stderr, /^error: CONTROLNET_API_KEY must be at least 16 characters \(it has 5\)/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('generate and hint: a missing local file says "file not found"', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-cli-'));
  try {
    await assert.rejects(cli(['generate', '--data-dir', dir, '-c', 'canny', '-i', 'no-such-photo.png']),
      (e: { stderr: string }) => /^error: --init-image: file not found: no-such-photo\.png\n$/.test(e.stderr));
    await assert.rejects(cli(['hint', '--data-dir', dir, '-c', 'canny', '-i', './missing/photo.jpg']),
      (e: { stderr: string }) => /^error: --image: file not found: \.\/missing\/photo\.jpg\n$/.test(e.stderr));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('models list: a table of kind, id, size, demo or real weights', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-cli-'));
  try {
    const { createDemoModels } = await import('../../src/engine/models/demo.ts');
    await createDemoModels(join(dir, 'models'), { baseId: 'tiny-demo', types: ['canny'] });
    const out = (await cli(['models', 'list', '--data-dir', dir])).stdout;
    assert.match(out, /^base\s+tiny-demo\s+[\d.]+ [KM]B\s+demo \(random weights, noise-like images\)$/m);
    assert.match(out, /^controlnet\s+canny\s+[\d.]+ [KM]B\s+demo/m);
    const json = JSON.parse((await cli(['models', 'list', '--json', '--data-dir', dir])).stdout);
    assert.equal(json.find((m: { id: string }) => m.id === 'tiny-demo').demo, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
