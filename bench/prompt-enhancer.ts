// enhance_prompt's cost on a GPT-2 of MagicPrompt-Stable-Diffusion's size (GPT-2 small: 12 layers, 768 wide, 12
// heads, 50257 tokens, 1024 positions; random weights, the same arithmetic as the real file): graph build + load,
// then milliseconds per new token with the KV cache (one position per pass) against re-feeding the whole sequence
// every step (no cache), for a 10-token prompt and 64 new tokens (the pipeline's bound).
//   node --import tsx bench/prompt-enhancer.ts [threads=1]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGpt2, type Gpt2ConfigJson } from '../src/engine/models/gpt2.ts';
import { compiledModel, createSession, ort } from '../src/engine/onnx/session.ts';
import { openWeightsFile } from '../src/engine/weights/open.ts';
import { writeSafetensors, type TensorToWrite } from '../src/engine/weights/safetensors.ts';

const threads = Number(process.argv[2] ?? 1);
const dir = mkdtempSync(join(tmpdir(), 'bench-gpt2-'));
const rt = { provider: 'cpu' as const, threads, cacheDir: dir };
const config: Gpt2ConfigJson = { model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12, activation_function: 'gelu_new' };
const D = 768, L = 12, H = 12, hd = 64, PROMPT = 10, NEW = 64;

try {
  const w: Record<string, TensorToWrite> = {};
  const add = (k: string, shape: number[], s = 0.02) => {
    const n = shape.reduce((a, b) => a * b, 1);
    w[k] = { dtype: 'float32', shape, data: Float32Array.from({ length: n }, (_, i) => ((((i + k.length) * 2654435761) % 1000) / 1000 - 0.5) * s) };
  };
  add('transformer.wte.weight', [50257, D]);
  add('transformer.wpe.weight', [1024, D]);
  for (let i = 0; i < L; i++) {
    const p = `transformer.h.${i}`;
    for (const ln of ['ln_1', 'ln_2']) { add(`${p}.${ln}.weight`, [D], 2); add(`${p}.${ln}.bias`, [D]); }
    add(`${p}.attn.c_attn.weight`, [D, 3 * D]); add(`${p}.attn.c_attn.bias`, [3 * D]);
    add(`${p}.attn.c_proj.weight`, [D, D]); add(`${p}.attn.c_proj.bias`, [D]);
    add(`${p}.mlp.c_fc.weight`, [D, 4 * D]); add(`${p}.mlp.c_fc.bias`, [4 * D]);
    add(`${p}.mlp.c_proj.weight`, [4 * D, D]); add(`${p}.mlp.c_proj.bias`, [D]);
  }
  add('transformer.ln_f.weight', [D], 2); add('transformer.ln_f.bias', [D]);
  const file = join(dir, 'model.safetensors');
  await writeSafetensors(file, w);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const src = await openWeightsFile(file);
  const t0 = performance.now();
  const compiled = await compiledModel(dir, { bench: 'gpt2' }, () => buildGpt2(config, src).graph);
  const session = await createSession(compiled.path, rt);
  console.log(`GPT-2 small (random, ${(Object.values(w).reduce((s, t) => s + t.data.length, 0) / 1e6).toFixed(0)} M parameters): build + write + load ${((performance.now() - t0) / 1000).toFixed(1)} s, threads ${threads}`);

  const emptyPast = (): Record<string, ort.Tensor> => {
    const f: Record<string, ort.Tensor> = {};
    for (let i = 0; i < L; i++) for (const kv of ['key', 'value']) f[`past.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, H, 0, hd]);
    return f;
  };
  const ids = (xs: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs, BigInt), [1, xs.length]);
  const argmax = (l: Float32Array) => l.reduce((b, v, i) => (v > l[b]! ? i : b), 0);
  const prompt = Array.from({ length: PROMPT }, (_, i) => 100 + i * 37);

  // with the cache: the prompt once, then one position per step
  let feeds: Record<string, ort.Tensor> = { ...emptyPast(), input_ids: ids(prompt) };
  let t = performance.now();
  let out = await session.run(feeds);
  const promptMs = performance.now() - t;
  const seqCached: number[] = [];
  t = performance.now();
  for (let s = 0; s < NEW; s++) {
    const next = argmax(out.logits!.data as Float32Array);
    seqCached.push(next);
    feeds = { input_ids: ids([next]) };
    for (let i = 0; i < L; i++) for (const kv of ['key', 'value']) feeds[`past.${i}.${kv}`] = out[`present.${i}.${kv}`]!;
    out = await session.run(feeds);
  }
  const cached = (performance.now() - t) / NEW;

  // without: the whole sequence every step (empty past)
  const seq = [...prompt];
  const seqFull: number[] = [];
  t = performance.now();
  for (let s = 0; s < NEW; s++) {
    const o = await session.run({ ...emptyPast(), input_ids: ids(seq) });
    const next = argmax(o.logits!.data as Float32Array);
    seqFull.push(next);
    seq.push(next);
  }
  const full = (performance.now() - t) / NEW;
  console.log(`prompt of ${PROMPT} tokens: ${promptMs.toFixed(0)} ms; ${NEW} new tokens: KV cache ${cached.toFixed(1)} ms/token, whole sequence each step ${full.toFixed(1)} ms/token (${(full / cached).toFixed(1)}×); same tokens: ${JSON.stringify(seqCached) === JSON.stringify(seqFull)}`);
  console.log(`enhance_prompt with ${NEW} new tokens ≈ ${((promptMs + cached * NEW) / 1000).toFixed(2)} s per request`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
