// The inpaint path with an SD inpainting model (9-channel UNet, as the 9-channel single files of
// tests/engine/weights/single-file.test.ts load): equal to diffusers' StableDiffusionControlNetInpaintPipeline with
// that UNet (tools/oracle/pipeline_inpaint9.py), max abs error <= 2e-3 on [0,1] pixels, as the other pipeline cases.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pipeline } from '../../../src/engine/pipeline/pipeline.ts';
import { EngineError } from '../../../src/engine/errors.ts';
import { openSafetensors, writeSafetensors, type TensorToWrite } from '../../../src/engine/weights/safetensors.ts';
import { FIXTURES, loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { options, toNp } from '../../support/pipeline-cases.ts';
import { TINY_TOKENIZER, tinyDataDir } from '../../support/tiny-models.ts';

const TOL = 2e-3;
const fx9 = loadFixture('pipeline/inpaint9');
const dataDir = tinyDataDir();
after(() => rmSync(dataDir, { recursive: true, force: true }));

// models/base/tiny-inpaint9: the tiny model with its UNet's conv_in widened to 9 input channels (the oracle's)
const tiny = join(FIXTURES, 'tiny', 'sd15');
const dir = join(dataDir, 'models', 'base', 'tiny-inpaint9');
mkdirSync(join(dir, 'unet'), { recursive: true });
for (const part of ['text_encoder', 'vae', 'scheduler', 'model_index.json']) symlinkSync(join(tiny, part), join(dir, part));
symlinkSync(TINY_TOKENIZER, join(dir, 'tokenizer'));
const config = JSON.parse(readFileSync(join(tiny, 'unet', 'config.json'), 'utf8'));
writeFileSync(join(dir, 'unet', 'config.json'), JSON.stringify({ ...config, in_channels: 9 }));
const src = await openSafetensors(join(tiny, 'unet', 'diffusion_pytorch_model.fp16.safetensors'));
const tensors: Record<string, TensorToWrite> = {};
for (const k of src.keys()) {
  const raw = await src.readRaw(k);
  tensors[k] = { dtype: raw.dtype, shape: raw.shape, data: raw.bytes };
}
const convIn = fx9.get('unet.conv_in.weight');
tensors['conv_in.weight'] = { dtype: 'float32', shape: convIn.shape, data: new Uint8Array((convIn.data as Float32Array).buffer) };
await writeSafetensors(join(dir, 'unet', 'diffusion_pytorch_model.safetensors'), tensors);

const pipeline = await Pipeline.create({ dataDir, threads: 1 });

for (const [name, c] of Object.entries<Record<string, any>>(fx9.meta.cases)) {
  test(`${name}: a 9-channel inpainting UNet in the inpaint path equals diffusers (strength ${c.strength})`, async (t) => {
    const { pixels } = await pipeline.generateRaw({ ...options(c), modelId: 'tiny-inpaint9' });
    const d = maxAbsDiff(toNp(pixels, c.samples), fx9.f32(`out.${name}`));
    t.diagnostic(`max abs error ${d.toExponential(2)}`);
    assert.ok(d <= TOL, `${name}: max abs error ${d} > ${TOL}`);
  });
}

test('an inpainting model without a mask is a bad_input naming mask_image', async () => {
  const c = fx9.meta.cases.inpaint9;
  await assert.rejects(pipeline.generateRaw({ ...options(c), modelId: 'tiny-inpaint9', maskImage: undefined, initImage: undefined, strength: 1 }),
    (e: unknown) => e instanceof EngineError && e.code === 'bad_input' && e.field === 'mask_image' && /9-channel UNet/.test(e.message));
});
