// Reported: a tokenizer saved only as tokenizer.json (what transformers 5 writes) was ignored; the server fell
// back silently to its bundled CLIP vocabulary and a model with another vocabulary then failed with a 500 from
// a Gather index. tokenizer.json and vocab.json + merges.txt are read; the bundled vocabulary is used only where
// the model has none and it fits the text encoder, and never silently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, loadFixture } from '../../support/fixtures.ts';
import { ClipTokenizer, DEFAULT_CLIP_TOKENIZER_DIR, loadClipTokenizer, TokenizerError } from '../../../src/engine/text/clip-tokenizer.ts';
import { ModelFiles } from '../../../src/engine/pipeline/model-files.ts';
import { EngineError } from '../../../src/engine/errors.ts';

const fx = loadFixture('tokenizer/tokenizer-json');
const prompts: string[] = fx.meta.prompts;
const SAVED = join(FIXTURES, 'weights', 'sd15-tiny-diffusers', 'tokenizer');

test('the reported case: a folder with only tokenizer.json + tokenizer_config.json gives transformers\' ids', async () => {
  const tok = await loadClipTokenizer(SAVED, { vocabSize: 1000 });
  assert.equal(tok.source, 'tokenizer.json');
  for (const [i, p] of prompts.entries()) {
    assert.deepEqual(tok.encodePadded(p), Array.from(fx.get(`padded.${i}`).data as Int32Array), `padded ${i}: ${JSON.stringify(p)}`);
    assert.deepEqual([tok.bosId, ...tok.encode(p), tok.eosId], Array.from(fx.get(`full.${i}`).data as Int32Array), `full ${i}`);
  }
});

test('the full CLIP vocabulary as tokenizer.json (merges as pairs or strings) equals vocab.json + merges.txt', async () => {
  const clip = loadFixture('tokenizer/clip');
  const vocab = JSON.parse(readFileSync(join(DEFAULT_CLIP_TOKENIZER_DIR, 'vocab.json'), 'utf8')) as Record<string, number>;
  const merges = readFileSync(join(DEFAULT_CLIP_TOKENIZER_DIR, 'merges.txt'), 'utf8').split('\n').slice(1).filter(Boolean);
  // the layout transformers 5 writes (see SAVED/tokenizer.json), with this vocabulary
  const saved = JSON.parse(readFileSync(join(SAVED, 'tokenizer.json'), 'utf8'));
  const specials = ['<|startoftext|>', '<|endoftext|>'];
  const asJson = (pairs: boolean) => JSON.stringify({
    ...saved,
    added_tokens: specials.map((content) => ({ id: vocab[content], content, special: true })),
    model: { ...saved.model, vocab, merges: pairs ? merges.map((m) => m.split(' ')) : merges },
  });
  for (const pairs of [true, false]) {
    const tok = ClipTokenizer.fromTokenizerJson(asJson(pairs));
    for (const [i, p] of (clip.meta.prompts as string[]).entries()) {
      assert.deepEqual(tok.encodePadded(p), Array.from(clip.get(`padded.${i}`).data as Int32Array), `prompt ${i} (pairs ${pairs})`);
    }
  }
});

test('never a silent fallback: a folder without vocabulary gets the bundled one only when it fits the text encoder, and says so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tok-'));
  try {
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 77 }));
    const bundled = await loadClipTokenizer(dir, { vocabSize: 49408 });
    assert.equal(bundled.source, 'bundled');
    await assert.rejects(loadClipTokenizer(dir, { vocabSize: 1000 }), (e: unknown) => e instanceof TokenizerError && /vocab_size 1000/.test(e.message));
    // a vocabulary bigger than the text encoder's embedding: the old Gather 500, now refused when the model opens
    await assert.rejects(loadClipTokenizer(undefined, { vocabSize: 1000 }), TokenizerError);
    cpSync(DEFAULT_CLIP_TOKENIZER_DIR, dir, { recursive: true });
    await assert.rejects(loadClipTokenizer(dir, { vocabSize: 1000 }), /has 49408 tokens but the text encoder's vocab_size is 1000/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a tokenizer.json that is not CLIP\'s BPE is refused, naming what it holds', () => {
  const wordpiece = JSON.stringify({ model: { type: 'WordPiece', vocab: { a: 0 } }, normalizer: { type: 'Lowercase' } });
  assert.throws(() => ClipTokenizer.fromTokenizerJson(wordpiece), /holds a WordPiece tokenizer/);
  const gpt2 = JSON.stringify({ model: { type: 'BPE', vocab: {}, merges: [], end_of_word_suffix: null }, normalizer: { type: 'Lowercase' } });
  assert.throws(() => ClipTokenizer.fromTokenizerJson(gpt2), /end_of_word_suffix null/);
});

test('a model whose tokenizer does not fit its text encoder is a 422 naming the model folder, not a 500', async () => {
  const data = mkdtempSync(join(tmpdir(), 'tok-model-'));
  try {
    const dir = join(data, 'models', 'base', 'tiny-no-vocab');
    cpSync(join(FIXTURES, 'weights', 'sd15-tiny-diffusers'), dir, { recursive: true });
    rmSync(join(dir, 'tokenizer', 'tokenizer.json'));
    const files = new ModelFiles(join(data, 'models'), join(data, 'cache'));
    await assert.rejects(files.base('tiny-no-vocab'), (e: unknown) => {
      assert.ok(e instanceof EngineError && e.code === 'bad_model_file', String(e));
      assert.match(e.message, /^model_id: the model file base\/tiny-no-vocab cannot be used: no tokenizer vocabulary .* vocab_size 1000/);
      assert.ok(!e.message.includes(data), e.message);
      return true;
    });
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
