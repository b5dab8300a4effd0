// multi_lingual with no translator installed: the language is identified and reported; English passes unchanged,
// other languages run untranslated and say so; meta.prompt is the prompt actually encoded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { detectLanguage } from '../../../src/engine/extras/language.ts';
import { Pipeline } from '../../../src/engine/pipeline/pipeline.ts';
import { appliedMeta } from '../../../src/worker/meta.ts';
import { fx, options } from '../../support/pipeline-cases.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';

const dataDir = tinyDataDir();
after(() => rmSync(dataDir, { recursive: true, force: true }));

test('detectLanguage: ISO 639-3 codes, "und" for prompts too short to tell', () => {
  assert.equal(detectLanguage('a photo of a cat sitting on a red sofa, highly detailed'), 'eng');
  assert.equal(detectLanguage('ein Foto einer Katze, die auf einem roten Sofa sitzt'), 'deu');
  assert.equal(detectLanguage('una foto de un gato sentado en un sofá rojo'), 'spa');
  assert.equal(detectLanguage('一只猫坐在红色沙发上的照片'), 'cmn');
  assert.equal(detectLanguage('cat'), 'und');
});

test('through the pipeline and meta: English unchanged, German untranslated and said so, off when not asked', async () => {
  const pipeline = await Pipeline.create({ dataDir, threads: 1 });
  const o = { ...options(fx.meta.cases.txt2img), samples: 1, steps: 1 };
  const en = (await pipeline.generateRaw({ ...o, prompt: 'a photo of a cat sitting on a red sofa', multiLingual: true })).applied;
  assert.equal(en.promptLanguage, 'eng');
  assert.deepEqual(en.translation, { status: 'ran', model: 'franc-min@6.2.0', note: 'English: passed unchanged' });
  const de = (await pipeline.generateRaw({ ...o, prompt: 'ein Foto einer Katze auf einem roten Sofa', multiLingual: true, enhancePrompt: true })).applied;
  assert.equal(de.prompt, 'ein Foto einer Katze auf einem roten Sofa');
  const m = appliedMeta({ ...de, safetyChecker: { status: 'off' }, upscale: { status: 'off' } });
  assert.equal(m.multi_lingual, 'unavailable'); assert.equal(m.prompt_language, 'deu');
  assert.match(String(m.multi_lingual_note), /^not translated: no translator installed/);
  assert.equal(m.enhance_prompt, 'unavailable'); assert.match(String(m.enhance_prompt_note), /the prompt is unchanged/);
  const off = (await pipeline.generateRaw({ ...o, multiLingual: false })).applied;
  assert.deepEqual(off.translation, { status: 'off' }); assert.equal(off.promptLanguage, undefined);
});
