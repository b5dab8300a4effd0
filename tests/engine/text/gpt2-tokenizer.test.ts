// GPT-2's byte-level BPE against transformers' GPT2Tokenizer on the oracle's tiny vocabulary
// (tools/oracle/gpt2.py): the same ids for varied texts from tokenizer.json and from vocab.json + merges.txt, and
// decode(encode(text)) gives the text back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gpt2Tokenizer } from '../../../src/engine/text/gpt2-tokenizer.ts';
import { TokenizerError } from '../../../src/engine/text/clip-tokenizer.ts';
import { FIXTURES, loadFixture } from '../../support/fixtures.ts';

const fx = loadFixture('gpt2/outputs');
const dir = join(FIXTURES, 'gpt2', 'tiny');
const texts = fx.meta.tokenize as string[];

test('tokenizer.json: ids equal transformers for every text, and decode gives the text back', async () => {
  const tok = await Gpt2Tokenizer.fromDir(dir);
  assert.equal(tok.eosId, fx.meta.eos);
  assert.equal(tok.vocabSize, fx.meta.vocab_size);
  for (const [i, t] of texts.entries()) {
    assert.deepEqual(tok.encode(t), [...fx.get(`tok.${i}`).data].map(Number), JSON.stringify(t));
    assert.equal(tok.decode(tok.encode(t)), t);
  }
});

test('vocab.json + merges.txt give the same ids as tokenizer.json', () => {
  const tok = Gpt2Tokenizer.fromStrings(readFileSync(join(dir, 'vocab.json'), 'utf8'), readFileSync(join(dir, 'merges.txt'), 'utf8'));
  for (const [i, t] of texts.entries()) assert.deepEqual(tok.encode(t), [...fx.get(`tok.${i}`).data].map(Number), JSON.stringify(t));
});

test('a CLIP tokenizer.json (lowercasing, "</w>" suffix) is refused', () => {
  const clip = readFileSync(join(FIXTURES, 'weights', 'sd15-tiny-diffusers', 'tokenizer', 'tokenizer.json'), 'utf8');
  assert.throws(() => Gpt2Tokenizer.fromTokenizerJson(clip), TokenizerError);
});
