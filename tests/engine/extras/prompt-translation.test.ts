// multi_lingual with a translator installed (the tiny random opus-mt model of tools/oracle/marian.py as
// translator/opus-mt-fr-en): through the engine's worker thread, a French prompt is translated before the text
// encoder (the images equal those of the translation given as the prompt), meta names the model and the language;
// a language without its translator runs untranslated and says which one to install; opus-mt-mul-en stands in for
// any language; English passes unchanged; a negative prompt is translated on its own.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEngine } from '../../../src/engine/host/index.ts';
import type { EngineError } from '../../../src/engine/errors.ts';
import { detectLanguage } from '../../../src/engine/extras/language.ts';
import { MarianTranslator, translatorIdsFor } from '../../../src/engine/extras/translator.ts';
import type { GenerateOptions } from '../../../src/engine/pipeline/types.ts';
import { appliedMeta } from '../../../src/worker/meta.ts';
import { FIXTURES } from '../../support/fixtures.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';

const dataDir = tinyDataDir();
const translators = join(dataDir, 'models', 'translator');
mkdirSync(translators, { recursive: true });
cpSync(join(FIXTURES, 'marian', 'tiny'), join(translators, 'opus-mt-fr-en'), { recursive: true });
const engine = await createEngine({ dataDir, threads: 1 });
after(async () => {
  await engine.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const FRENCH = 'une photo d\'un chat assis sur un canapé rouge, peinture à l\'huile';
const GERMAN = 'ein Foto einer Katze, die auf einem roten Sofa sitzt';
const W = 32, H = 32;
const opts: GenerateOptions = {
  modelId: 'tiny', prompt: FRENCH, negativePrompt: '', width: W, height: H, controls: [], autoHint: false, guessMode: false,
  samples: 1, scheduler: 'EulerDiscreteScheduler', steps: 2, guidanceScale: 7.5, strength: 1, seed: 7, tomesd: false,
  useKarrasSigmas: false, algorithmType: 'none', vae: null, loras: [], clipSkip: 1, safetyChecker: false,
  enhancePrompt: false, multiLingual: true, upscale: 1,
};

test('translator ids: the language\'s own opus-mt model first, then the many-to-English one', () => {
  assert.deepEqual(translatorIdsFor('fra'), ['opus-mt-fr-en', 'opus-mt-mul-en']);
  assert.deepEqual(translatorIdsFor('cmn'), ['opus-mt-zh-en', 'opus-mt-mul-en']);
  assert.deepEqual(translatorIdsFor('xyz'), ['opus-mt-mul-en']);
});

test('a French prompt is translated in the worker; the translation is what the text encoder encoded; meta says so', async () => {
  assert.equal(detectLanguage(FRENCH), 'fra');
  const direct = await MarianTranslator.load(join(translators, 'opus-mt-fr-en'), 'opus-mt-fr-en', { provider: 'cpu', threads: 1, cacheDir: join(dataDir, 'cache') });
  const expected = (await direct.translate(FRENCH)).text;
  await direct.release();
  assert.ok(expected.length > 0 && expected !== FRENCH);

  const translated = await engine.generate(opts);
  assert.equal(translated.applied.prompt, expected);
  assert.equal(translated.applied.promptLanguage, 'fra');
  assert.deepEqual(translated.applied.translation, { status: 'ran', model: 'opus-mt-fr-en', note: 'translated from fr with opus-mt-fr-en' });
  const m = appliedMeta(translated.applied);
  assert.equal(m.prompt, expected);
  assert.equal(m.multi_lingual, 'yes');
  assert.equal(m.multi_lingual_model, 'opus-mt-fr-en');
  assert.equal(m.multi_lingual_note, 'translated from fr with opus-mt-fr-en');
  assert.equal(m.prompt_language, 'fra');

  // the same images as the translation sent as the prompt, and not those of the French prompt encoded as written
  const asTranslation = await engine.generate({ ...opts, prompt: expected, multiLingual: false });
  assert.ok(translated.images[0]!.equals(asTranslation.images[0]!), 'the text encoder received the translation');
  const untranslated = await engine.generate({ ...opts, multiLingual: false });
  assert.ok(!translated.images[0]!.equals(untranslated.images[0]!), 'the translation changed what was encoded');
});

test('a French negative prompt is translated on its own (the English prompt passes unchanged); meta shows the encoded one', async () => {
  const expected = (await engine.generate(opts)).applied.prompt; // FRENCH's translation, as the prompt
  const r = await engine.generate({ ...opts, prompt: 'a photo of a cat', negativePrompt: FRENCH });
  assert.equal(r.applied.prompt, 'a photo of a cat');
  assert.equal(r.applied.negativePrompt, expected);
  assert.deepEqual(r.applied.negativeTranslation, { status: 'ran', model: 'opus-mt-fr-en', note: 'translated from fr with opus-mt-fr-en', language: 'fra' });
  const m = appliedMeta(r.applied);
  assert.equal(m.negative_prompt, expected);
  assert.equal(m.negative_prompt_language, 'fra');
  assert.equal(m.negative_prompt_note, 'translated from fr with opus-mt-fr-en');
  // the text encoder received the translated negative prompt
  const asTranslation = await engine.generate({ ...opts, prompt: 'a photo of a cat', negativePrompt: expected, multiLingual: false });
  assert.ok(r.images[0]!.equals(asTranslation.images[0]!));
  assert.equal(asTranslation.applied.negativePrompt, expected);
  assert.equal(asTranslation.applied.negativeTranslation, undefined, 'multi_lingual off: nothing to report');
  const untranslated = await engine.generate({ ...opts, prompt: 'a photo of a cat', negativePrompt: FRENCH, multiLingual: false });
  assert.ok(!r.images[0]!.equals(untranslated.images[0]!));
  // an empty negative prompt is not identified at all
  assert.equal((await engine.generate({ ...opts, prompt: 'a photo of a cat' })).applied.negativeTranslation, undefined);
});

test('each translation that will run is planned as a translate phase before the text encoder, and timed as one', async () => {
  const plans: string[][] = [], phases: string[] = [];
  const hooks = { onPlan: (p: { work: { phase: string }[] }) => plans.push(p.work.map((w) => w.phase)), onPhase: (e: { phase: string }) => phases.push(e.phase) };
  await engine.generate({ ...opts, negativePrompt: FRENCH }, hooks);
  assert.deepEqual(plans[0]!.filter((p) => p === 'translate').length, 2, 'the prompt and the negative prompt');
  assert.ok(plans[0]!.lastIndexOf('translate') < plans[0]!.indexOf('encode'));
  assert.equal(phases.filter((p) => p === 'translate').length, 2);
  // English, or a language with no translator installed: nothing planned, nothing timed
  plans.length = 0; phases.length = 0;
  await engine.generate({ ...opts, prompt: 'a photo of a cat on a sofa', negativePrompt: GERMAN }, hooks);
  assert.ok(!plans[0]!.includes('translate') && !phases.includes('translate'));
});

test('German with only opus-mt-fr-en installed runs untranslated and names the model to install; opus-mt-mul-en then translates it', async () => {
  assert.equal(detectLanguage(GERMAN), 'deu');
  const de = await engine.generate({ ...opts, prompt: GERMAN });
  assert.equal(de.applied.prompt, GERMAN);
  assert.deepEqual(de.applied.translation, {
    status: 'unavailable',
    reason: 'not translated: no translator installed (the prompt looks like ISO 639-3 "deu"; install translator/opus-mt-de-en: models pull opus-mt-de-en)',
  });
  assert.equal(appliedMeta(de.applied).multi_lingual, 'unavailable');

  cpSync(join(FIXTURES, 'marian', 'tiny'), join(translators, 'opus-mt-mul-en'), { recursive: true });
  try {
    const mul = await engine.generate({ ...opts, prompt: GERMAN });
    assert.deepEqual(mul.applied.translation, { status: 'ran', model: 'opus-mt-mul-en', note: 'translated from de with opus-mt-mul-en' });
    assert.notEqual(mul.applied.prompt, GERMAN);
  } finally {
    rmSync(join(translators, 'opus-mt-mul-en'), { recursive: true, force: true });
  }
});

test('English passes unchanged; a translator folder that cannot be used is a 422 naming its file', async () => {
  const en = await engine.generate({ ...opts, prompt: 'a photo of a cat sitting on a red sofa, oil painting' });
  assert.equal(en.applied.prompt, 'a photo of a cat sitting on a red sofa, oil painting');
  assert.deepEqual(en.applied.translation, { status: 'ran', model: 'franc-min@6.2.0', note: 'English: passed unchanged' });

  const broken = join(translators, 'opus-mt-es-en');
  mkdirSync(broken);
  writeFileSync(join(broken, 'config.json'), JSON.stringify({ model_type: 'marian', activation_function: 'swish' }));
  try {
    await assert.rejects(engine.generate({ ...opts, prompt: 'una foto de un gato sentado en un sofá rojo' }), (e: EngineError) => {
      assert.equal(e.code, 'bad_model_file');
      assert.equal(e.message, 'multi_lingual: the model file translator/opus-mt-es-en cannot be used: the translator has no source.spm');
      assert.ok(!e.message.includes(dataDir), 'no server path');
      return true;
    });
  } finally {
    rmSync(broken, { recursive: true, force: true });
  }
});
