// `models pull opus-mt-fr-en` fetches Helsinki-NLP/opus-mt-fr-en from HF_ENDPOINT into translator/opus-mt-fr-en
// (the hub here serves the tiny random opus-mt model of tools/oracle/marian.py under that name), without the
// TensorFlow and rust-bert copies of the weights; the installed folder then translates as transformers does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MarianTranslator } from '../../src/engine/extras/translator.ts';
import { NAMED_MODELS } from '../../src/storage/default-models.ts';
import { startHub } from '../storage/hub-server.ts';
import { FIXTURES, loadFixture } from '../support/fixtures.ts';

const run = promisify(execFile);
const cli = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, ['bin/controlnet.js', ...args], { env: { ...process.env, LOG_LEVEL: 'silent', ...env } });

test('the catalogue knows opus-mt-<src>-en translators (CC-BY-4.0) and the many-to-English one', () => {
  for (const id of ['opus-mt-fr-en', 'opus-mt-de-en', 'opus-mt-es-en', 'opus-mt-it-en', 'opus-mt-zh-en', 'opus-mt-ja-en', 'opus-mt-ru-en', 'opus-mt-mul-en']) {
    assert.deepEqual(NAMED_MODELS[id], { kind: 'translator', source: `Helsinki-NLP/${id}`, licence: 'CC-BY-4.0' });
  }
});

test('models pull opus-mt-fr-en installs translator/opus-mt-fr-en, which then translates', async () => {
  const tiny = join(FIXTURES, 'marian', 'tiny');
  const files = readdirSync(tiny).map((name) => ({ name, data: readFileSync(join(tiny, name)), lfs: name.endsWith('.safetensors') }));
  const hub = await startHub({ 'Helsinki-NLP/opus-mt-fr-en': [...files, { name: 'tf_model.h5', data: Buffer.alloc(100) }, { name: 'rust_model.ot', data: Buffer.alloc(100) }] });
  const dir = mkdtempSync(join(tmpdir(), 'cn-cli-'));
  try {
    const pull = await cli(['models', 'pull', 'opus-mt-fr-en', '--data-dir', dir], { HF_ENDPOINT: hub.url, ALLOW_PRIVATE_HOSTS: '127.0.0.1' });
    assert.match(pull.stdout, /translator\/opus-mt-fr-en installed/);
    assert.ok(!hub.requests.some((r) => /\.(h5|ot)$/.test(r.url)), 'no TensorFlow or rust-bert weights fetched');
    const installed = join(dir, 'models', 'translator', 'opus-mt-fr-en');
    assert.deepEqual(readdirSync(installed).sort(), readdirSync(tiny).sort());
    const tr = await MarianTranslator.load(installed, 'opus-mt-fr-en', { provider: 'cpu', threads: 1, cacheDir: join(dir, 'cache') });
    const c = loadFixture('marian/outputs').meta.cases[0] as { prompt: string; generated_ids: number[] };
    assert.deepEqual((await tr.translate(c.prompt, { numBeams: 1 })).generatedIds, c.generated_ids);
    await tr.release();
  } finally {
    hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
