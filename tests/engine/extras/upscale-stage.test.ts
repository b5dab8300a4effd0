// The pipeline's upscale stage picks an installed Real-ESRGAN over the embedded model, names it in what it
// applied, and returns exactly factor × the size; a broken upscaler file is a 422 naming it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { EngineError } from '../../../src/engine/errors.ts';
import { Pipeline } from '../../../src/engine/pipeline/pipeline.ts';
import { FIXTURES } from '../../support/fixtures.ts';
import { fx, options } from '../../support/pipeline-cases.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';

const dataDir = tinyDataDir();
const up = join(dataDir, 'models', 'upscaler');
mkdirSync(up, { recursive: true });
after(() => rmSync(dataDir, { recursive: true, force: true }));
const pipeline = await Pipeline.create({ dataDir, threads: 1 });
const o = { ...options(fx.meta.cases.txt2img), samples: 1, safetyChecker: false };

async function size(png: Buffer): Promise<number[]> {
  const m = await sharp(png).metadata();
  return [m.width!, m.height!];
}

test('embedded esrgan-slim when nothing is installed; then RealESRGAN_x2plus for ×2 and x4plus (resized) for ×3', async () => {
  const plain = await pipeline.generate(o);
  const [w, h] = await size(plain.images[0]!);
  const embedded = await pipeline.generate({ ...o, upscale: 2 });
  assert.deepEqual(await size(embedded.images[0]!), [2 * w!, 2 * h!]);
  assert.match(embedded.applied.upscale.status === 'ran' ? embedded.applied.upscale.model : '', /^esrgan-slim-x2 /);

  copyFileSync(join(FIXTURES, 'rrdbnet', 'x2.safetensors'), join(up, 'RealESRGAN_x2plus.safetensors'));
  copyFileSync(join(FIXTURES, 'rrdbnet', 'x4.pth'), join(up, 'RealESRGAN_x4plus.pth'));
  const x2 = await pipeline.generate({ ...o, upscale: 2 });
  assert.deepEqual(await size(x2.images[0]!), [2 * w!, 2 * h!]);
  assert.deepEqual(x2.applied.upscale, { status: 'ran', model: 'RealESRGAN_x2plus', factor: 2 });
  const x3 = await pipeline.generate({ ...o, upscale: 3 });
  assert.deepEqual(await size(x3.images[0]!), [3 * w!, 3 * h!]);
  assert.deepEqual(x3.applied.upscale, { status: 'ran', model: 'RealESRGAN_x4plus ×4, then Lanczos to ×3', factor: 3 });
  rmSync(join(up, 'RealESRGAN_x2plus.safetensors'));
  rmSync(join(up, 'RealESRGAN_x4plus.pth'));
});

test('an upscaler file that is not an RRDBNet is a 422 naming upscaler/<file>', async () => {
  writeFileSync(join(up, 'RealESRGAN_x4plus.safetensors'), 'junk');
  await assert.rejects(pipeline.generate({ ...o, upscale: 3 }), (e: unknown) =>
    e instanceof EngineError && e.code === 'bad_model_file' && /upscaler\/RealESRGAN_x4plus\.safetensors/.test(e.message) && !e.message.includes(dataDir));
  rmSync(join(up, 'RealESRGAN_x4plus.safetensors'));
});
