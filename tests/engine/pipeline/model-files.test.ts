// A user's bad model file is a 422 naming the file relative to the models folder, never a 500, never a server path.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../../../src/engine/errors.ts';
import { ModelFiles } from '../../../src/engine/pipeline/model-files.ts';
import { Pipeline } from '../../../src/engine/pipeline/pipeline.ts';
import { writeSafetensors } from '../../../src/engine/weights/safetensors.ts';
import { failureOf } from '../../../src/worker/worker.ts';
import { fx, options } from '../../support/pipeline-cases.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';

const dataDir = tinyDataDir();
const models = join(dataDir, 'models');
after(() => rmSync(dataDir, { recursive: true, force: true }));

const f32 = (n: number) => ({ dtype: 'float32' as const, shape: [n], data: new Float32Array(n) });

function assertBadFile(e: unknown, file: string, reason: RegExp): true {
  assert.ok(e instanceof EngineError, String(e));
  assert.equal(e.code, 'bad_model_file');
  assert.ok(e.message.includes(` ${file} `), e.message);
  assert.match(e.message, reason);
  assert.ok(!e.message.includes(dataDir), `the message shows a server path: ${e.message}`);
  assert.equal(failureOf(e).status, 422);
  return true;
}

test('a file that is not safetensors, and an SDXL checkpoint in base/, are 422s naming base/<file>', async () => {
  writeFileSync(join(models, 'base', 'junk.safetensors'), 'not a safetensors file at all');
  await writeSafetensors(join(models, 'base', 'sdxl.safetensors'), { 'conditioner.embedders.0.x': f32(2), 'model.diffusion_model.y': f32(2) });
  const files = new ModelFiles(models, join(dataDir, 'cache'));
  await assert.rejects(files.base('junk'), (e) => assertBadFile(e, 'base/junk.safetensors', /not a safetensors file/));
  await assert.rejects(files.base('sdxl'), (e) => assertBadFile(e, 'base/sdxl.safetensors', /SDXL/));
});

test('a LoHa LoRA is a 422 naming lora/<file>; a missing one names the expected place without a server path', async () => {
  await writeSafetensors(join(models, 'lora', 'loha.safetensors'), { 'lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_a': f32(4) });
  const pipeline = await Pipeline.create({ dataDir, threads: 1 });
  const o = options(fx.meta.cases.txt2img);
  await assert.rejects(pipeline.generateRaw({ ...o, loras: [{ id: 'loha', strength: 1 }] }), (e) => assertBadFile(e, 'lora/loha.safetensors', /LoHa/));
  await assert.rejects(pipeline.generateRaw({ ...o, loras: [{ id: 'absent', strength: 1 }] }), (e: unknown) => {
    assert.ok(e instanceof EngineError && e.code === 'model_missing', String(e));
    assert.match(e.message, /lora\/absent/);
    assert.ok(!e.message.includes(dataDir), e.message);
    return failureOf(e).status === 422;
  });
});
