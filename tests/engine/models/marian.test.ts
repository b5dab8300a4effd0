// MarianMTModel built by our graph builder (models/marian.ts) and decoded by extras/translator.ts, against
// transformers 5 on the tiny random opus-mt layout of tools/oracle/marian.py: the encoder's last_hidden_state, the
// logits of every cached decoder step against one teacher-forced pass, and generate()'s greedy token ids exactly;
// from model.safetensors and from a torch.save pytorch_model.bin.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MarianTranslator } from '../../../src/engine/extras/translator.ts';
import { buildMarian, marianPositions } from '../../../src/engine/models/marian.ts';
import { openComponentFolder } from '../../../src/engine/weights/open.ts';
import { FIXTURES, loadFixture } from '../../support/fixtures.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'marian-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));
const rt = { provider: 'cpu' as const, threads: 1, cacheDir };
const fx = loadFixture('marian/outputs');
const cases = fx.meta.cases as { prompt: string; input_ids: number[]; generated_ids: number[]; text: string; beam_ids: number[] }[];

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('encoder output and each cached decoder step\'s logits equal transformers\' (max abs error ≤ 1e-4)', async (t) => {
  const tr = await MarianTranslator.load(join(FIXTURES, 'marian', 'tiny'), 'tiny', rt);
  let enc = 0, logits = 0;
  for (const [i, c] of cases.entries()) {
    enc = Math.max(enc, maxAbsDiff(await tr.encode(c.input_ids), fx.f32(`encoder_${i}`)));
    const steps = await tr.stepLogits(c.input_ids, c.generated_ids.slice(0, -1));
    const ref = fx.get(`step_logits_${i}`);
    const V = ref.shape[1]!;
    assert.equal(steps.length, ref.shape[0]);
    for (const [s, l] of steps.entries()) logits = Math.max(logits, maxAbsDiff(l, (ref.data as Float32Array).subarray(s * V, (s + 1) * V)));
  }
  t.diagnostic(`max abs error: encoder ${enc.toExponential(2)}, step logits ${logits.toExponential(2)}`);
  assert.ok(enc <= 1e-4, `encoder max abs error ${enc}`);
  assert.ok(logits <= 1e-4, `decoder step logits max abs error ${logits}`);
  await tr.release();
});

test('greedy generate() token ids and decoded text equal transformers\' exactly', async () => {
  const tr = await MarianTranslator.load(join(FIXTURES, 'marian', 'tiny'), 'tiny', rt);
  assert.equal(tr.generation.maxLength, 24);
  for (const c of cases) {
    const t = await tr.translate(c.prompt, { numBeams: 1 });
    assert.deepEqual(t.inputIds, c.input_ids, c.prompt);
    assert.deepEqual(t.generatedIds, c.generated_ids, c.prompt);
    assert.equal(t.text, c.text, c.prompt);
  }
  // both ends of the loop are exercised: </s> chosen before max_length, and forced at max_length
  assert.ok(cases.some((c) => c.generated_ids.length < 24) && cases.some((c) => c.generated_ids.length === 24));
  await tr.release();
});

test('beam search (the generation config\'s num_beams 4) gives generate()\'s ids exactly', async () => {
  const tr = await MarianTranslator.load(join(FIXTURES, 'marian', 'tiny'), 'tiny', rt);
  assert.equal(tr.generation.numBeams, 4);
  for (const c of cases) assert.deepEqual((await tr.translate(c.prompt)).generatedIds, c.beam_ids, c.prompt);
  // beam search found other sequences than greedy for some prompts (else this test would not tell them apart)
  assert.ok(cases.some((c) => c.beam_ids.join() !== c.generated_ids.join()));
  await tr.release();
});

test('the same model from a torch.save pytorch_model.bin (the Helsinki repositories\' file) generates the same ids', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'marian-bin-'));
  try {
    for (const f of ['config.json', 'generation_config.json', 'pytorch_model.bin']) copyFileSync(join(FIXTURES, 'marian', 'tiny-bin', f), join(dir, f));
    for (const f of ['source.spm', 'target.spm', 'vocab.json', 'tokenizer_config.json']) copyFileSync(join(FIXTURES, 'marian', 'tiny', f), join(dir, f));
    const tr = await MarianTranslator.load(dir, 'tiny-bin', rt);
    for (const c of cases.slice(0, 3)) assert.deepEqual((await tr.translate(c.prompt, { numBeams: 1 })).generatedIds, c.generated_ids);
    await tr.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the sinusoidal table we compute equals the one torch.save stored in pytorch_model.bin', async () => {
  const src = await openComponentFolder(join(FIXTURES, 'marian', 'tiny-bin'));
  const mine = marianPositions(64, 16);
  // column 0 is sin(p) and column 8 cos(p) (sin half first, cos half second)
  assert.ok(Math.abs(mine[5 * 16]! - Math.sin(5)) < 1e-7 && Math.abs(mine[5 * 16 + 8]! - Math.cos(5)) < 1e-7);
  for (const name of ['model.encoder.embed_positions.weight', 'model.decoder.embed_positions.weight']) {
    assert.ok(maxAbsDiff(mine, await src.readF32(name)) < 1e-6, name);
  }
});

test('a weight the config does not use is an error naming it', async () => {
  const src = await openComponentFolder(join(FIXTURES, 'marian', 'tiny'));
  const config = (await import(join(FIXTURES, 'marian', 'tiny', 'config.json'), { with: { type: 'json' } })).default;
  assert.throws(() => buildMarian({ ...config, decoder_layers: 1 }, src), /not used by the config: model\.decoder\.layers\.1\./);
});
