// enhance_prompt's GPT-2 against transformers' generate() on the oracle's tiny random GPT-2
// (tools/oracle/gpt2.py): greedy token ids equal exactly for every prompt, and every step's logits (the KV cache
// at work from step 2 on) within 1e-4; seeded sampling is reproducible and bounded; the enhanced prompt is the
// original followed by the continuation up to its first newline.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PromptEnhancer } from '../../../src/engine/extras/prompt-enhancer.ts';
import { FIXTURES, loadFixture, maxAbsDiff } from '../../support/fixtures.ts';

const fx = loadFixture('gpt2/outputs');
const cacheDir = mkdtempSync(join(tmpdir(), 'cn-gpt2-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));
const enhancer = await PromptEnhancer.load(join(FIXTURES, 'gpt2', 'tiny'), 'prompt_enhancer/tiny', { provider: 'cpu', threads: 1, cacheDir });
const V = fx.meta.vocab_size as number;

test('greedy: token ids equal transformers\' generate() exactly, logits of every step within 1e-4', async (t) => {
  let worst = 0;
  for (const [i, prompt] of (fx.meta.prompts as string[]).entries()) {
    const ids = enhancer.tokenizer.encode(prompt);
    assert.deepEqual(ids, [...fx.get(`prompt.${i}`).data].map(Number));
    const expected = [...fx.get(`greedy.${i}`).data].map(Number);
    const ref = fx.f32(`logits.${i}`);
    const g = await enhancer.generate(ids, {
      maxNewTokens: fx.meta.new_tokens, stopAtNewline: false,
      onLogits: (l, step) => { worst = Math.max(worst, maxAbsDiff(l, ref.subarray(step * V, (step + 1) * V))); },
    });
    assert.deepEqual(g.tokens, expected.filter((x) => x !== fx.meta.eos), prompt);
    assert.equal(g.stoppedBy, expected.length < fx.meta.new_tokens || expected.includes(fx.meta.eos) ? 'eos' : 'length');
  }
  t.diagnostic(`max abs logit error over all steps ${worst.toExponential(2)} (smallest top-2 margin in the reference: ${fx.meta.min_greedy_margin.toFixed(4)})`);
  assert.ok(worst <= 1e-4, `max abs error ${worst}`);
});

test('seeded sampling: the same seed gives the same tokens, other seeds other ones; length bounded', async () => {
  const ids = enhancer.tokenizer.encode('a photo of a cat');
  const sample = { temperature: 1, topK: 50, topP: 1 };
  const a = await enhancer.generate(ids, { maxNewTokens: 12, sample: { ...sample, seed: 7 }, stopAtNewline: false });
  const b = await enhancer.generate(ids, { maxNewTokens: 12, sample: { ...sample, seed: 7 }, stopAtNewline: false });
  assert.deepEqual(a, b);
  assert.ok(a.tokens.length <= 12);
  const others = await Promise.all([8, 9, 10].map((seed) => enhancer.generate(ids, { maxNewTokens: 12, sample: { ...sample, seed }, stopAtNewline: false })));
  assert.ok(others.some((o) => JSON.stringify(o.tokens) !== JSON.stringify(a.tokens)), 'three other seeds all gave the same tokens');
  // top_k 1 is greedy whatever the seed
  const greedy = await enhancer.generate(ids, { maxNewTokens: 12, stopAtNewline: false });
  const k1 = await enhancer.generate(ids, { maxNewTokens: 12, sample: { temperature: 1, topK: 1, topP: 1, seed: 123 }, stopAtNewline: false });
  assert.deepEqual(k1.tokens, greedy.tokens);
});

test('enhance(): the original prompt + the continuation before its first newline, the same for the same seed', async () => {
  const prompt = 'portrait of a woman, intricate';
  const e = await enhancer.enhance(prompt, 42);
  assert.ok(e.prompt.startsWith(prompt), e.prompt);
  assert.ok(!e.prompt.includes('\n'));
  assert.deepEqual(await enhancer.enhance(prompt, 42), e);
  assert.match(e.note, /^sampled \(top_k 50, top_p 1, temperature 1, seed 42\): \d+ tokens, stopped at (end of text|a newline|the 64-token limit)/);
  // the continuation is what generate() sampled, decoded
  const g = await enhancer.generate(enhancer.tokenizer.encode(prompt), { maxNewTokens: 64, sample: { temperature: 1, topK: 50, topP: 1, seed: 42 } });
  assert.equal(e.prompt, (prompt + enhancer.tokenizer.decode(g.tokens).split('\n')[0]).trimEnd());
});

test('a prompt longer than the model\'s positions keeps its last tokens as context; new tokens stay within positions', async () => {
  const long = 'a photo of a cat, highly detailed, digital painting, '.repeat(8);
  const ids = enhancer.tokenizer.encode(long);
  assert.ok(ids.length > enhancer.dims.positions);
  const g = await enhancer.generate(ids, { maxNewTokens: 20, stopAtNewline: false });
  assert.equal(g.contextTokens, enhancer.dims.positions - 20);
  assert.ok(g.tokens.length <= 20);
});

test('an aborted signal stops generation with a cancelled error', async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(enhancer.generate([1, 2], { maxNewTokens: 4, signal: ac.signal }), /cancelled/);
});

test('sampling stops after a newline token (unless told not to); enhance() keeps the text before it', async () => {
  const prompt = 'cyberpunk city';
  const ids = enhancer.tokenizer.encode(prompt);
  const sample = { temperature: 1, topK: 50, topP: 1, seed: 1 };
  const g = await enhancer.generate(ids, { maxNewTokens: 64, sample });
  assert.equal(g.stoppedBy, 'newline');
  assert.ok(enhancer.tokenizer.decode(g.tokens.slice(-1)).includes('\n'));
  assert.ok(!enhancer.tokenizer.decode(g.tokens.slice(0, -1)).includes('\n'));
  const on = await enhancer.generate(ids, { maxNewTokens: 64, sample, stopAtNewline: false });
  assert.deepEqual(on.tokens.slice(0, g.tokens.length), g.tokens);
  assert.ok(on.tokens.length > g.tokens.length);
  const e = await enhancer.enhance(prompt, 1);
  assert.equal(e.prompt, (prompt + enhancer.tokenizer.decode(g.tokens).split('\n')[0]).trimEnd());
  assert.match(e.note, /stopped at a newline$/);
});
