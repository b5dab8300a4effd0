// multi_lingual's translator at full size: a MarianMTModel with the architecture of Helsinki-NLP/opus-mt-fr-en
// (d_model 512, 6 + 6 layers, 8 heads, FFN 2048, vocabulary 59514, swish; random weights: the same arithmetic as
// the real file) built by our builder; the time of the first build, the encoder on a 24-token prompt, and the
// greedy decoder steps with the key/value cache, and beam search with 4 beams (</s> suppressed so that every run
// decodes the full length).
//   node --import tsx bench/translate.ts [threads=1] [tokens=48]
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MarianTranslator } from '../src/engine/extras/translator.ts';
import { writeSafetensors } from '../src/engine/weights/safetensors.ts';

const threads = Number(process.argv[2] ?? 1);
const tokens = Number(process.argv[3] ?? 48);
const dir = mkdtempSync(join(tmpdir(), 'bench-translate-'));
const rt = { provider: 'cpu' as const, threads, cacheDir: join(dir, 'cache') };
const V = 59514, D = 512, F = 2048, L = 6, pad = V - 1;
const time = async <T>(f: () => Promise<T>): Promise<[T, number]> => { const t0 = performance.now(); const r = await f(); return [r, (performance.now() - t0) / 1000]; };

try {
  const w: Record<string, { dtype: 'float32'; shape: number[]; data: Float32Array }> = {};
  let seed = 1;
  const add = (k: string, shape: number[]) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) { seed = (seed * 1103515245 + 12345) >>> 0; data[i] = (seed / 2 ** 32 - 0.5) * 0.1; }
    w[k] = { dtype: 'float32', shape, data };
  };
  const lin = (k: string, o: number, i: number) => { add(`${k}.weight`, [o, i]); add(`${k}.bias`, [o]); };
  const ln = (k: string) => { add(`${k}.weight`, [D]); add(`${k}.bias`, [D]); };
  add('model.shared.weight', [V, D]);
  add('final_logits_bias', [1, V]);
  for (const side of ['encoder', 'decoder'] as const) {
    for (let i = 0; i < L; i++) {
      const l = `model.${side}.layers.${i}`;
      for (const a of side === 'encoder' ? ['self_attn'] : ['self_attn', 'encoder_attn']) {
        for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) lin(`${l}.${a}.${p}`, D, D);
        ln(`${l}.${a}_layer_norm`);
      }
      lin(`${l}.fc1`, F, D); lin(`${l}.fc2`, D, F); ln(`${l}.final_layer_norm`);
    }
  }
  await writeSafetensors(join(dir, 'model.safetensors'), w);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    model_type: 'marian', vocab_size: V, d_model: D, encoder_layers: L, decoder_layers: L, encoder_attention_heads: 8,
    decoder_attention_heads: 8, encoder_ffn_dim: F, decoder_ffn_dim: F, max_position_embeddings: 512, activation_function: 'swish',
    scale_embedding: true, pad_token_id: pad, eos_token_id: 0, decoder_start_token_id: pad, forced_eos_token_id: 0,
  }));
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ bad_words_ids: [[pad], [0]], decoder_start_token_id: pad, eos_token_id: 0, forced_eos_token_id: 0, max_length: 512 }));
  for (const f of ['source.spm', 'target.spm', 'vocab.json']) copyFileSync(join(import.meta.dirname, '..', 'tests', 'fixtures', 'marian', 'tiny', f), join(dir, f));

  const [tr, build] = await time(() => MarianTranslator.load(dir, 'opus-mt-fr-en architecture (random)', rt));
  const input = [...Array.from({ length: 23 }, (_, i) => 100 + i * 37), 0];
  await tr.generate(input, 4); // warm-up
  const [, enc] = await time(() => tr.encode(input));
  const [ids, total] = await time(() => tr.generate(input, tokens));
  const perToken = (total - enc) / (ids.length - 1);
  const [beamIds, beam] = await time(() => tr.beamSearch(input, 4, tokens));
  console.log(`opus-mt-fr-en architecture, random weights, ${threads} thread(s): first build + load ${build.toFixed(1)} s; ` +
    `encoder (24 tokens) ${(enc * 1000).toFixed(0)} ms; ${ids.length - 1} greedy steps with the cache ${total.toFixed(2)} s in all, ` +
    `${(perToken * 1000).toFixed(1)} ms per token; beam search (4 beams, one batch) ${beam.toFixed(2)} s for ${beamIds.length - 1} tokens, ` +
    `${(((beam - enc) / (beamIds.length - 1)) * 1000).toFixed(1)} ms per token; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
  await tr.release();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
