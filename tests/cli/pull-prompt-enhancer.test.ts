// `models pull MagicPrompt-Stable-Diffusion` fetches the hub repository (here a local hub serving the oracle's tiny
// GPT-2 under that name, plus files the real repository holds that are not needed) into
// models/prompt_enhancer/default, without the skipped ones, where the enhance step finds and runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SessionCache } from '../../src/engine/pipeline/sessions.ts';
import { PromptEnhancers, installedPromptEnhancer } from '../../src/engine/pipeline/prompt-enhancement.ts';
import { NAMED_MODELS } from '../../src/storage/default-models.ts';
import { FIXTURES } from '../support/fixtures.ts';
import { startHub } from '../storage/hub-server.ts';

const run = promisify(execFile);

test('models pull MagicPrompt-Stable-Diffusion installs prompt_enhancer/default, which the enhance step runs', async () => {
  const entry = NAMED_MODELS['MagicPrompt-Stable-Diffusion']!;
  assert.deepEqual({ kind: entry.kind, id: entry.id, source: entry.source }, { kind: 'prompt_enhancer', id: 'default', source: 'Gustavosta/MagicPrompt-Stable-Diffusion' });
  const tiny = join(FIXTURES, 'gpt2', 'tiny');
  const files = readdirSync(tiny).map((name) => ({ name, data: readFileSync(join(tiny, name)), lfs: name.endsWith('.safetensors') }));
  // what the real repository also holds and the entry skips
  const extra = ['coreml/text-generation/float32_model.mlpackage/Manifest.json', 'training_args.bin'];
  files.push(...extra.map((name) => ({ name, data: Buffer.from('not needed'), lfs: false })));
  const hub = await startHub({ [entry.source]: files });
  const dir = mkdtempSync(join(tmpdir(), 'cn-cli-'));
  try {
    const env = { ...process.env, LOG_LEVEL: 'silent', HF_ENDPOINT: hub.url, ALLOW_PRIVATE_HOSTS: '127.0.0.1' };
    const help = await run(process.execPath, ['bin/controlnet.js', 'models', 'pull', '--help'], { env });
    assert.match(help.stdout, /MagicPrompt-Stable-Diffusion/);
    const pull = await run(process.execPath, ['bin/controlnet.js', 'models', 'pull', 'MagicPrompt-Stable-Diffusion', '--data-dir', dir], { env });
    assert.match(pull.stdout, /prompt_enhancer\/default installed/);
    const models = join(dir, 'models');
    assert.deepEqual(readdirSync(join(models, 'prompt_enhancer', 'default')).sort(), readdirSync(tiny).sort(), 'the Core ML folder and training_args.bin are not fetched');
    assert.equal(installedPromptEnhancer(models)?.id, 'default');
    const out = await new PromptEnhancers(models, { provider: 'cpu', threads: 1, cacheDir: join(dir, 'cache') }, new SessionCache(16_000)).run('a photo of a cat', { enhancePrompt: true, seed: 3 });
    assert.equal(out.outcome.status, 'ran');
    assert.ok(out.text.startsWith('a photo of a cat'));
  } finally {
    hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
