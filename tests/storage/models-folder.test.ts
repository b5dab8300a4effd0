import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelsFolder } from '../../src/storage/models-folder.ts';

test('installed means the file the engine opens exists, and no download is in progress', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-mf-'));
  try {
    const f = new ModelsFolder(dir);
    mkdirSync(join(dir, 'base', 'empty'), { recursive: true });
    assert.equal(f.installed('base', 'empty'), false, 'a folder without model_index.json');
    mkdirSync(join(dir, 'base', 'sd'), { recursive: true });
    writeFileSync(join(dir, 'base', 'sd', 'model_index.json'), '{}');
    assert.ok(f.installed('base', 'sd'));
    writeFileSync(join(dir, 'base', 'sd', '.incomplete'), '');
    assert.equal(f.installed('base', 'sd'), false, 'download in progress');
    writeFileSync(join(dir, 'base', 'ckpt.safetensors'), 'x');
    assert.ok(f.installed('base', 'ckpt'));
    assert.equal(f.firstInstalled('base'), 'ckpt');
    mkdirSync(join(dir, 'lora'), { recursive: true });
    writeFileSync(join(dir, 'lora', 'style.safetensors'), 'xx');
    assert.deepEqual((await f.list('lora')).map((m) => [m.id, m.bytes]), [['style', 2]]);
    assert.equal(f.installed('lora', '../base/ckpt'), false);
    assert.ok(await f.delete('lora', 'style'));
    assert.equal(await f.delete('lora', 'style'), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
