// The reported case: 200 long prompts of random words grew the BPE word cache without bound (570,688 entries,
// +82 MB). The cache is now a bounded LRU; a bounded cache must still give the same ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipTokenizer, DEFAULT_CLIP_TOKENIZER_DIR, WORD_CACHE_LIMIT } from '../../../src/engine/text/clip-tokenizer.ts';

/** Deterministic "random words" (a linear congruential generator over letters). */
function randomPrompts(count: number, words: number): string[] {
  let s = 12345;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 16); // high bits: the low ones cycle fast
  return Array.from({ length: count }, () => Array.from({ length: words }, () =>
    Array.from({ length: 3 + (next() % 8) }, () => String.fromCharCode(97 + (next() % 26))).join('')).join(' '));
}

test('200 long prompts of random words leave at most WORD_CACHE_LIMIT cached words', async () => {
  const tok = await ClipTokenizer.fromDir(DEFAULT_CLIP_TOKENIZER_DIR);
  const prompts = randomPrompts(200, 400); // 80,000 words, nearly all distinct
  for (const p of prompts) tok.encodeChunks(p);
  assert.ok(tok.cachedWords <= WORD_CACHE_LIMIT, `cached ${tok.cachedWords}`);
  assert.ok(tok.cachedWords > WORD_CACHE_LIMIT / 2, 'the cache is still used');
});

test('a tiny cache (and none at all) gives the same ids as a large one; recent words stay cached', async () => {
  const [vocab, merges] = await Promise.all(['vocab.json', 'merges.txt'].map((f) => readFile(join(DEFAULT_CLIP_TOKENIZER_DIR, f), 'utf8')));
  const big = ClipTokenizer.fromStrings(vocab!, merges!, { wordCacheLimit: 1_000_000 });
  const small = ClipTokenizer.fromStrings(vocab!, merges!, { wordCacheLimit: 16 });
  const none = ClipTokenizer.fromStrings(vocab!, merges!, { wordCacheLimit: 0 });
  for (const p of [...randomPrompts(20, 60), 'a photo of a cat, a photo of a cat', 'cat cat cat dog']) {
    assert.deepEqual(small.encode(p), big.encode(p));
    assert.deepEqual(none.encode(p), big.encode(p));
  }
  assert.equal(small.cachedWords, 16);
  assert.equal(none.cachedWords, 0);
});
