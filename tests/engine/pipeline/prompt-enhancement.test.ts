// enhance_prompt through the pipeline and the worker-thread engine, with the oracle's tiny random GPT-2 installed
// as models/prompt_enhancer/default: the enhanced prompt is what the text encoder gets (the images equal those of
// the enhanced text sent as a plain prompt, and differ from the original prompt's) and what meta reports; with
// none installed the prompt is unchanged and meta says "unavailable"; a broken enhancer folder is a 422 naming it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../../../src/engine/errors.ts';
import { PromptEnhancer } from '../../../src/engine/extras/prompt-enhancer.ts';
import { createEngine } from '../../../src/engine/host/index.ts';
import { Pipeline } from '../../../src/engine/pipeline/pipeline.ts';
import { installedPromptEnhancer } from '../../../src/engine/pipeline/prompt-enhancement.ts';
import { parseRequest } from '../../../src/request/schema.ts';
import { buildMeta } from '../../../src/worker/meta.ts';
import { FIXTURES } from '../../support/fixtures.ts';
import { fx, options } from '../../support/pipeline-cases.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';

const dataDir = tinyDataDir();
const models = join(dataDir, 'models');
const tinyGpt2 = join(FIXTURES, 'gpt2', 'tiny');
after(() => rmSync(dataDir, { recursive: true, force: true }));
const o = { ...options(fx.meta.cases.txt2img), samples: 1, steps: 2, safetyChecker: false, multiLingual: false, prompt: 'a photo of a cat', seed: 11 };
const pipeline = await Pipeline.create({ dataDir, threads: 1 });

test('none installed: the prompt is unchanged and the outcome is "unavailable" with the reason', async () => {
  assert.equal(installedPromptEnhancer(models), undefined);
  const a = (await pipeline.generateRaw({ ...o, enhancePrompt: true })).applied;
  assert.equal(a.prompt, o.prompt);
  assert.equal(a.promptEnhancement.status, 'unavailable');
  assert.deepEqual((await pipeline.generateRaw({ ...o, enhancePrompt: false })).applied.promptEnhancement, { status: 'off' });
});

test('installed: the enhanced prompt (prompt + the seeded continuation) is what the text encoder gets', async () => {
  mkdirSync(join(models, 'prompt_enhancer'), { recursive: true });
  symlinkSync(tinyGpt2, join(models, 'prompt_enhancer', 'default'));
  try {
    assert.equal(installedPromptEnhancer(models)?.id, 'default');
    const enhanced = await pipeline.generateRaw({ ...o, enhancePrompt: true });
    const reference = await (await PromptEnhancer.load(tinyGpt2, 'x', { provider: 'cpu', threads: 1, cacheDir: join(dataDir, 'cache') })).enhance(o.prompt, o.seed);
    assert.equal(enhanced.applied.prompt, reference.prompt);
    assert.ok(enhanced.applied.prompt.length > o.prompt.length && enhanced.applied.prompt.startsWith(o.prompt), enhanced.applied.prompt);
    assert.deepEqual(enhanced.applied.promptEnhancement, { status: 'ran', model: 'prompt_enhancer/default (GPT2LMHeadModel)', note: reference.note });
    // the same request again: the same text (seeded); planned and timed as one enhance phase, before the encoding
    const plan: string[] = [], phases: string[] = [];
    const again = await pipeline.generateRaw({ ...o, enhancePrompt: true }, { onPlan: (p) => plan.push(...p.work.map((w) => w.phase)), onPhase: (e) => phases.push(e.phase) });
    assert.equal(again.applied.prompt, enhanced.applied.prompt);
    assert.equal(plan.filter((p) => p === 'enhance').length, 1);
    assert.ok(plan.indexOf('enhance') < plan.indexOf('encode'));
    assert.deepEqual(phases.filter((p) => p === 'enhance'), ['enhance']);
    // the encoder saw the enhanced text: the same pixels as sending it as the prompt, other pixels than the original's
    const plain = await pipeline.generateRaw({ ...o, prompt: enhanced.applied.prompt, enhancePrompt: false });
    assert.deepEqual(plain.pixels, enhanced.pixels);
    const original = await pipeline.generateRaw({ ...o, enhancePrompt: false });
    assert.notDeepEqual(original.pixels, enhanced.pixels);
  } finally {
    rmSync(join(models, 'prompt_enhancer', 'default'));
  }
});

test('through the worker-thread engine and meta: meta.prompt is the enhanced prompt, enhance_prompt "yes" with model and note', async () => {
  const engine = await createEngine({ dataDir, modelsDir: models, threads: 1 });
  symlinkSync(tinyGpt2, join(models, 'prompt_enhancer', 'MagicPrompt-tiny'));
  try {
    const req = parseRequest({ prompt: o.prompt, seed: o.seed, model_id: 'tiny', width: 64, height: 64, samples: 1, num_inference_steps: 2, safety_checker: 'no', multi_lingual: 'no', enhance_prompt: 'yes' }, { family: 'v6', task: 'text2img' });
    const r = await engine.generate({ ...o, enhancePrompt: req.enhance_prompt === 'yes', seed: req.seed! });
    const meta = buildMeta(req, 'x', r.applied);
    assert.ok(String(meta.prompt).startsWith(o.prompt) && String(meta.prompt).length > o.prompt.length, String(meta.prompt));
    assert.equal(meta.enhance_prompt, 'yes');
    assert.equal(meta.enhance_prompt_model, 'prompt_enhancer/MagicPrompt-tiny (GPT2LMHeadModel)');
    assert.match(String(meta.enhance_prompt_note), /^sampled \(top_k 50, top_p 1, temperature 1, seed 11\): \d+ tokens, stopped at /);
  } finally {
    await engine.close();
    rmSync(join(models, 'prompt_enhancer', 'MagicPrompt-tiny'));
  }
});

test('a broken enhancer folder is a 422 naming prompt_enhancer/<id>, never a server path', async () => {
  const bad = join(models, 'prompt_enhancer', 'default');
  mkdirSync(bad, { recursive: true });
  writeFileSync(join(bad, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_embd: 32, n_layer: 2, n_head: 4, vocab_size: 420 }));
  try {
    await assert.rejects(pipeline.generateRaw({ ...o, enhancePrompt: true }), (e: unknown) =>
      e instanceof EngineError && e.code === 'bad_model_file' && /prompt_enhancer\/default/.test(e.message) && !e.message.includes(dataDir));
  } finally {
    rmSync(bad, { recursive: true });
  }
});
