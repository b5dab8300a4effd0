// Our SentencePiece unigram tokenizer and MarianTokenizer against transformers' MarianTokenizer + the sentencepiece
// package (tools/oracle/marian.py): the same pieces and ids for every prompt (accents, CJK, Cyrillic, emoji and other
// characters outside the model merged into one unknown piece, extra whitespace, full-width letters through the
// nmt_nfkc charsmap, a >>fra<< code), and the same decoded text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { MarianTokenizer } from '../../../src/engine/text/marian-tokenizer.ts';
import { SentencePieceModel } from '../../../src/engine/text/sentencepiece.ts';
import { FIXTURES, loadFixture } from '../../support/fixtures.ts';

const fx = loadFixture('marian/outputs');
const dir = join(FIXTURES, 'marian', 'tiny');
const cases = fx.meta.cases as { prompt: string; pieces: string[]; input_ids: number[]; source_pieces_spm: string[] }[];

test('SentencePiece unigram segmentation equals the sentencepiece package (source model)', () => {
  const spm = new SentencePieceModel(readFileSync(join(dir, 'source.spm')));
  for (const c of cases) {
    const text = c.prompt.split('<<').pop()!;
    assert.deepEqual(spm.encode(text).map((p) => p.piece), c.source_pieces_spm, c.prompt);
  }
});

test('MarianTokenizer pieces and input ids equal transformers\'', async () => {
  const tok = await MarianTokenizer.load(dir);
  for (const c of cases) {
    assert.deepEqual(tok.tokenize(c.prompt), c.pieces, c.prompt);
    assert.deepEqual(tok.encode(c.prompt), c.input_ids, c.prompt);
  }
  // the cases reach the paths they are there for: unknown pieces (merged runs), pieces vocab.json lacks, the code
  assert.ok(cases.some((c) => c.pieces.includes('🐈🐈')));
  assert.ok(cases.some((c) => c.pieces[0] === '>>fra<<'));
  assert.ok(cases.some((c) => c.pieces.includes('ABC')), 'full-width letters are NFKC-normalized');
});

test('the normalizer on its own: combining accents, ligatures, odd spaces, tabs and newlines, zero-width and control characters, circled and half-width forms', () => {
  const spm = new SentencePieceModel(readFileSync(join(dir, 'source.spm')));
  for (const c of fx.meta.normalizer_cases as { text: string; pieces: string[] }[]) assert.deepEqual(spm.encode(c.text).map((p) => p.piece), c.pieces, JSON.stringify(c.text));
});

test('special tokens written in the text are split out as transformers does', async () => {
  const tok = await MarianTokenizer.load(dir);
  for (const c of fx.meta.special_cases as { text: string; pieces: string[]; input_ids: number[] }[]) {
    assert.deepEqual(tok.tokenize(c.text), c.pieces, c.text);
    assert.deepEqual(tok.encode(c.text), c.input_ids, c.text);
  }
});

test('MarianTokenizer.decode(skip_special_tokens=True) equals transformers\'', async () => {
  const tok = await MarianTokenizer.load(dir);
  for (const c of fx.meta.decode_cases as { ids: number[]; text: string }[]) assert.equal(tok.decode(c.ids), c.text);
  for (const c of fx.meta.cases as { generated_ids: number[]; text: string }[]) assert.equal(tok.decode(c.generated_ids), c.text);
});

test('a model that is not a unigram model is refused', () => {
  assert.throws(() => new SentencePieceModel(Uint8Array.of(0x12, 0x02, 0x18, 0x02)), /model type 2 is not supported/);
});
