import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture } from '../../support/fixtures.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipTokenizer, defaultClipTokenizer, loadClipTokenizer } from '../../../src/engine/text/clip-tokenizer.ts';

const fx = loadFixture('tokenizer/clip');
const prompts: string[] = fx.meta.prompts;

test('fixture covers the required variety', () => {
  assert.ok(prompts.length >= 30);
  assert.ok(prompts.includes(''));
  assert.ok(prompts.some((p) => fx.get(`full.${prompts.indexOf(p)}`).shape[0]! > 154));
});

test('ids equal transformers CLIPTokenizer (padding=max_length, max_length=77, truncation) on every prompt', async () => {
  const tok = await defaultClipTokenizer();
  for (const [i, p] of prompts.entries()) {
    assert.deepEqual(tok.encodePadded(p), Array.from(fx.get(`padded.${i}`).data as Int32Array), `prompt ${i}: ${JSON.stringify(p)}`);
  }
});

test('untruncated ids equal transformers on every prompt', async () => {
  const tok = await defaultClipTokenizer();
  for (const [i, p] of prompts.entries()) {
    const full = Array.from(fx.get(`full.${i}`).data as Int32Array);
    assert.deepEqual([tok.bosId, ...tok.encode(p), tok.eosId], full, `prompt ${i}: ${JSON.stringify(p)}`);
  }
});

test('long prompts split into 75-token chunks, each bos … eos padded to 77', async () => {
  const tok = await defaultClipTokenizer();
  for (const [i, p] of prompts.entries()) {
    const body = Array.from(fx.get(`full.${i}`).data as Int32Array).slice(1, -1);
    const chunks = tok.encodeChunks(p);
    assert.equal(chunks.length, Math.max(1, Math.ceil(body.length / 75)));
    assert.deepEqual(chunks[0], tok.encodePadded(p));
    for (const [c, chunk] of chunks.entries()) {
      const part = body.slice(c * 75, c * 75 + 75);
      assert.equal(chunk.length, 77);
      assert.deepEqual(chunk.slice(0, part.length + 2), [49406, ...part, 49407]);
      assert.ok(chunk.slice(part.length + 2).every((t) => t === 49407));
    }
  }
});

test('pad token and max length come from tokenizer_config', () => {
  const vocab = { '!': 0, 'a</w>': 1, '<|startoftext|>': 2, '<|endoftext|>': 3 };
  const tok = ClipTokenizer.fromStrings(JSON.stringify(vocab), '#version: 0.2\n', { padToken: '!', maxLength: 6 });
  assert.deepEqual(tok.encodePadded('A'), [2, 1, 3, 0, 0, 0]);
  assert.deepEqual(tok.encodeChunks('a a a a a'), [[2, 1, 1, 1, 1, 3], [2, 1, 3, 0, 0, 0]]);
  assert.throws(() => ClipTokenizer.fromStrings(JSON.stringify(vocab), '', { padToken: '<pad>' }), /no token "<pad>"/);
});

test('a tokenizer folder without vocabulary uses the bundled one with the folder\'s config (SD 2.x pads with "!")', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tok-'));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ pad_token: { content: '!' }, model_max_length: 77 }));
  const tok = await loadClipTokenizer(dir);
  assert.equal(tok.padId, 0);
  assert.deepEqual(tok.encodePadded('a cat').slice(0, 5), [49406, 320, 2368, 49407, 0]);
  assert.equal((await loadClipTokenizer()).padId, 49407);
});
