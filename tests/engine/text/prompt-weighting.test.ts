// Reported: (word:1.3), ((word)), [word], escaped parentheses and BREAK reached CLIP as literal text. They are now
// read the way diffusers' community long-prompt-weighting pipeline reads them (A1111's BREAK added); the
// reference is that pipeline's own functions on the tiny text encoder (tools/oracle/prompt_weighting.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { buildClipText } from '../../../src/engine/models/clip-text.ts';
import { ClipTokenizer } from '../../../src/engine/text/clip-tokenizer.ts';
import { applyTokenWeights, parsePromptAttention, weightedChunks } from '../../../src/engine/text/prompt-weighting.ts';
import { encodePrompts, type TextEncoderRun } from '../../../src/engine/pipeline/prompt.ts';
import { loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { TINY_TOKENIZER } from '../../support/tiny-models.ts';
import { sessionFor, tinyConfig, tinyWeights } from '../models/support.ts';
import { parseRequest } from '../../../src/request/schema.ts';
import { buildMeta } from '../../../src/worker/meta.ts';

const fx = loadFixture('text/prompt-weighting');
const cases: [string, string][] = fx.meta.cases;
const TOL = 1e-4; // one text-encoder forward in fp32 (DESIGN.md), then a few multiplications

test('parse_prompt_attention: lpw\'s pieces and weights on every case, and its documented examples', () => {
  for (const [i, [prompt]] of cases.entries()) {
    if (prompt.includes('BREAK')) continue; // lpw has no BREAK (it keeps the word as text)
    const got = parsePromptAttention(prompt);
    const want = fx.meta.parsed[i] as [string, number][];
    assert.equal(got.length, want.length, prompt);
    for (const [j, [text, w]] of got.entries()) {
      assert.equal(text, want[j]![0]);
      assert.ok(Math.abs(w - want[j]![1]) < 1e-12, `${prompt}: ${text} ${w} vs ${want[j]![1]}`);
    }
  }
  assert.deepEqual(parsePromptAttention('normal text'), [['normal text', 1]]);
  assert.deepEqual(parsePromptAttention('(unnecessary)(parens)'), [['unnecessaryparens', 1.1]]);
  assert.deepEqual(parsePromptAttention('\\(literal\\]'), [['(literal]', 1]]);
  assert.deepEqual(parsePromptAttention('a BREAK b'), [['a', 1], ['BREAK', -1], ['b', 1]]);
  assert.deepEqual(parsePromptAttention('aBREAKb BREAKING'), [['aBREAKb BREAKING', 1]], 'BREAK only as a word');
});

test('BREAK closes the current 75-token chunk (A1111); a prompt without syntax gives the plain chunks', async () => {
  const tok = await ClipTokenizer.fromDir(TINY_TOKENIZER);
  const w = weightedChunks(tok, 'a cat BREAK (a dog:1.5)');
  assert.equal(w.ids.length, 2);
  assert.deepEqual(w.ids[0], tok.encodePadded('a cat'));
  assert.deepEqual(w.ids[1], tok.encodePadded('a dog'));
  const n = tok.encode('a dog').length;
  assert.deepEqual(w.weights[1]!.slice(0, n + 2), [1, ...Array(n).fill(1.5), 1]);
  assert.equal(weightedChunks(tok, 'BREAK x').ids.length, 2, 'a leading BREAK leaves one empty chunk, as A1111 does');
  assert.equal(weightedChunks(tok, 'x BREAK').ids.length, 1, 'a trailing BREAK adds nothing');
  const long = 'tree '.repeat(100);
  assert.deepEqual(weightedChunks(tok, long).ids, tok.encodeChunks(long));
});

test('weighted embeddings equal the lpw pipeline\'s (prompt and negative, over 75 tokens, escapes, BREAK)', async () => {
  const tok = await ClipTokenizer.fromDir(TINY_TOKENIZER);
  const { graph } = buildClipText(tinyConfig('sd15/text_encoder'), await tinyWeights('sd15/text_encoder', 'model.safetensors'));
  const session = await sessionFor(graph);
  const run: TextEncoderRun = async (ids, rows, skip) => {
    const out = await session.run({ input_ids: new ort.Tensor('int64', ids, [rows, ids.length / rows]), skip: new ort.Tensor('int64', BigInt64Array.of(BigInt(skip)), []) });
    return { data: out.hidden_states!.data as Float32Array, dim: out.hidden_states!.dims[2]! };
  };
  for (const [i, [prompt, negative]] of cases.entries()) {
    const want = fx.f32(`prompt.${i}`), wantNeg = fx.f32(`negative.${i}`);
    const e = await encodePrompts(tok, run, prompt, negative, 1, true, 0, true);
    assert.equal(e.seq * e.dim, want.length, `case ${i}: sequence length`);
    const half = e.data.length / 2;
    const err = maxAbsDiff(e.data.subarray(half), want), errNeg = maxAbsDiff(e.data.subarray(0, half), wantNeg);
    assert.ok(err <= TOL && errNeg <= TOL, `case ${i} ${JSON.stringify(prompt)}: max abs err ${err} (negative ${errNeg})`);
    // weighting off reads the prompt as text: lpw with skip_parsing
    const plain = await encodePrompts(tok, run, prompt, negative, 1, true, 0, false);
    const wantPlain = fx.f32(`plain.${i}`);
    if (plain.seq * plain.dim === wantPlain.length) {
      const plainErr = maxAbsDiff(plain.data.subarray(plain.data.length / 2), wantPlain);
      assert.ok(plainErr <= TOL, `case ${i} plain: ${plainErr}`);
    } else {
      // lpw truncates to max_embeddings_multiples = 3 chunks; we never truncate (the brackets read as text make case 4 longer)
      assert.ok(plain.seq > 3 * 77 && wantPlain.length === 3 * 77 * plain.dim, `case ${i}: only lpw's 3-chunk truncation may differ`);
    }
    if (/[()[\]]/.test(prompt) && plain.seq === e.seq) assert.ok(maxAbsDiff(plain.data.subarray(half), want) > 10 * TOL, `case ${i}: the weighting changes the embedding`);
  }
});

test('applyTokenWeights keeps the mean and scales positions relative to each other', () => {
  const emb = Float32Array.from([1, 2, 3, 4, 5, 6]);
  applyTokenWeights(emb, [1, 2, 1], 2);
  const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
  assert.ok(Math.abs(mean(emb) - 3.5) < 1e-6);
  assert.ok(Math.abs(emb[2]! / emb[0]! - 6) < 1e-6, 'position 1 doubled relative to position 0');
});

test('the request field: prompt_weighting defaults to yes, "no" turns it off, meta echoes it', () => {
  const base = { controlnet_model: 'canny', control_image: 'aGVsbG8=' };
  assert.equal(parseRequest(base).prompt_weighting, 'yes');
  assert.equal(parseRequest({ ...base, prompt_weighting: false }).prompt_weighting, 'no');
  assert.equal(parseRequest({ ...base, prompt_weighting: 'null' }).prompt_weighting, 'yes');
  assert.throws(() => parseRequest({ ...base, prompt_weighting: 'maybe' }), /prompt_weighting must be "yes" or "no"/);
  assert.equal(buildMeta(parseRequest({ ...base, prompt_weighting: 'no' }), 'p').prompt_weighting, 'no');
});
