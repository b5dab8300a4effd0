import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from '../../support/fixtures.ts';
import { LoraCache, readLora } from '../../../src/engine/lora/load.ts';

test('LoraCache: parsed once per path + mtime + size, re-read when the file changes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lora-cache-'));
  try {
    const file = join(dir, 'a.safetensors');
    copyFileSync(join(FIXTURES, 'lora', 'kohya.safetensors'), file);
    const cache = new LoraCache();
    const first = await cache.get(file);
    assert.equal(await cache.get(file), first, 'a hit returns the same parsed object');
    copyFileSync(join(FIXTURES, 'lora', 'diffusers_peft.safetensors'), file);
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const second = await cache.get(file);
    assert.notEqual(second, first);
    assert.deepEqual(second.formats, ['diffusers']);
    // A PEFT folder is keyed by its files.
    assert.ok((await cache.get(join(FIXTURES, 'lora', 'peft'))).targets.size > 100);
    assert.equal(cache.size, 3);
    // The byte budget evicts the least recently used entries.
    const small = new LoraCache(1);
    await small.get(file);
    await small.get(join(FIXTURES, 'lora', 'kohya.safetensors'));
    assert.equal(small.size, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readLora: clear errors for missing, pickled and empty-folder LoRAs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lora-bad-'));
  try {
    writeFileSync(join(dir, 'x.pt'), 'not really');
    await assert.rejects(readLora(join(dir, 'x.pt')));
    writeFileSync(join(dir, 'x.txt'), 'not really');
    await assert.rejects(readLora(join(dir, 'x.txt')), /unknown weights file type/);
    const empty = mkdtempSync(join(dir, 'empty-'));
    await assert.rejects(readLora(empty), /no adapter_model\.safetensors or pytorch_lora_weights\.safetensors/);
    await assert.rejects(readLora(join(dir, 'missing.safetensors')), /ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readLora: a torch.save LoRA (.pt) gives the same branches as its .safetensors twin', async () => {
  const a = await readLora(join(FIXTURES, 'lora', 'kohya.safetensors'));
  const b = await readLora(join(FIXTURES, 'lora', 'kohya.pt'));
  assert.deepEqual([...b.targets.keys()], [...a.targets.keys()]);
  for (const [k, x] of a.targets) {
    const y = b.targets.get(k)!;
    assert.deepEqual([y.rank, y.alpha, y.downDims, y.upDims], [x.rank, x.alpha, x.downDims, x.upDims]);
    assert.deepEqual(y.down, x.down);
    assert.deepEqual(y.up, x.up);
  }
});
