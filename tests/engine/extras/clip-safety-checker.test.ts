// A base model folder with diffusers' safety_checker/ and feature_extractor/ is checked by that checker, else an
// installed standalone one, else the embedded one; a flagged image is replaced as safety_checker_type says.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { clipPixelValues } from '../../../src/engine/extras/clip-safety-checker.ts';
import { Pipeline } from '../../../src/engine/pipeline/pipeline.ts';
import { openSafetensors, writeSafetensors } from '../../../src/engine/weights/safetensors.ts';
import { FIXTURES, loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { fx, options } from '../../support/pipeline-cases.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';

const dataDir = tinyDataDir();
after(() => rmSync(dataDir, { recursive: true, force: true }));
const base = join(dataDir, 'models', 'base');

/** base/<id>: the tiny model's parts plus a safety checker whose concept thresholds are `threshold`. */
async function modelWithChecker(id: string, threshold: number | undefined): Promise<void> {
  const dir = join(base, id);
  mkdirSync(dir);
  for (const part of readdirSync(join(base, 'tiny'))) symlinkSync(join(base, 'tiny', part), join(dir, part));
  const sc = join(dir, 'safety_checker');
  mkdirSync(sc);
  copyFileSync(join(FIXTURES, 'safety_checker', 'tiny', 'config.json'), join(sc, 'config.json'));
  const src = await openSafetensors(join(FIXTURES, 'safety_checker', 'tiny', 'model.safetensors'));
  const tensors: Record<string, { dtype: 'float32'; shape: number[]; data: Float32Array }> = {};
  for (const k of src.keys()) {
    const data = await src.readF32(k);
    tensors[k] = { dtype: 'float32', shape: src.info(k)!.shape, data: k === 'concept_embeds_weights' && threshold !== undefined ? data.fill(threshold) : data };
  }
  await writeSafetensors(join(sc, 'model.safetensors'), tensors);
  mkdirSync(join(dir, 'feature_extractor'));
  writeFileSync(join(dir, 'feature_extractor', 'preprocessor_config.json'), JSON.stringify({
    size: { shortest_edge: 28 }, crop_size: { height: 28, width: 28 }, image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711],
  }));
}

test('the model\'s own checker runs; everything flagged (threshold -2) is replaced; nothing flagged (threshold 2) passes', async () => {
  await modelWithChecker('flag-all', -2);
  await modelWithChecker('flag-none', 2);
  const pipeline = await Pipeline.create({ dataDir, threads: 1 });
  const o = { ...options(fx.meta.cases.txt2img), samples: 2, safetyChecker: true, safetyCheckerType: 'black' as const };
  const all = await pipeline.generate({ ...o, modelId: 'flag-all' });
  assert.deepEqual(all.nsfw, [true, true]);
  assert.deepEqual(all.applied.safetyChecker, { status: 'ran', model: 'flag-all/safety_checker (diffusers StableDiffusionSafetyChecker)', flagged: 2, replacement: 'black' });
  for (const png of all.images) assert.ok((await sharp(png).raw().toBuffer()).every((v) => v === 0), 'replaced by black');
  const none = await pipeline.generate({ ...o, modelId: 'flag-none' });
  assert.deepEqual(none.nsfw, [false, false]);
  assert.ok(!(await sharp(none.images[0]!).raw().toBuffer()).every((v) => v === 0));
  // the tiny model itself has no checker: the embedded one runs
  const plain = await pipeline.generate({ ...o, modelId: 'tiny' });
  assert.match(plain.applied.safetyChecker.status === 'ran' ? plain.applied.safetyChecker.model : '', /^nsfwjs-mobilenet_v2/);
  // a standalone checker (CompVis/stable-diffusion-safety-checker's layout) in models/safety_checker/default then takes over
  const standalone = join(dataDir, 'models', 'safety_checker', 'default');
  mkdirSync(standalone, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(base, 'flag-all', 'safety_checker', f), join(standalone, f));
  copyFileSync(join(base, 'flag-all', 'feature_extractor', 'preprocessor_config.json'), join(standalone, 'preprocessor_config.json'));
  const installed = await pipeline.generate({ ...o, modelId: 'tiny' });
  assert.deepEqual(installed.nsfw, [true, true]);
  assert.equal(installed.applied.safetyChecker.status === 'ran' && installed.applied.safetyChecker.model, 'safety_checker/default (diffusers StableDiffusionSafetyChecker)');
});

test('pixel values equal transformers\' CLIPImageProcessor (Pillow bicubic, truncated long side, centre crop)', () => {
  const fx = loadFixture('safety_checker/clip_preprocess');
  const pre = { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] };
  for (const [i, c] of (fx.meta.cases as { width: number; height: number; size: number }[]).entries()) {
    const ours = clipPixelValues({ width: c.width, height: c.height, data: fx.get(`image${i}`).data as Uint8Array }, { ...pre, size: c.size, crop: c.size });
    // float32 rounding of (v / 255 − mean) / std only
    assert.ok(maxAbsDiff(ours, fx.f32(`pixel_values${i}`)) <= 1e-6, `case ${i}: ${maxAbsDiff(ours, fx.f32(`pixel_values${i}`))}`);
  }
});
