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
    assert.match(list.stdout, /^controlnet\tcanny\t10002$/m);
    await assert.rejects(cli(['models', 'pull', 'acme/none', '--data-dir', dir], env), /not found/);
  } finally {
    hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
