// GPT2LMHeadModel (transformers modeling_gpt2.py) as an ONNX graph with a KV cache: one graph serves the prompt
// (past length 0) and every generated token (sequence length 1, the previous keys and values fed back).
// Graph I/O:
//   input_ids int64 [1, S]; past.<i>.key / past.<i>.value float32 [1, heads, P, head_dim] for each layer i
//   (P = 0 on the first call: empty tensors)
//   → logits float32 [1, vocab] of the last position only (what decoding reads), present.<i>.key / .value
//   float32 [1, heads, P + S, head_dim] (the next call's past).
// Positions are P .. P+S-1; the caller keeps P + S <= n_positions (the position table's rows).
// Weights keep transformers' names: transformer.wte / wpe / h.<i>.{ln_1, attn.c_attn, attn.c_proj, ln_2,
// mlp.c_fc, mlp.c_proj} / ln_f. c_attn, c_proj and c_fc are Conv1D: weight [in, out] (x @ W + b), transposed with
// respect to nn.Linear, so they go to MatMul as stored. lm_head is tied to wte (tie_word_embeddings, GPT-2's
// default): the logits are a Gemm with wte transposed, one copy of the table. Files of the original OpenAI layout
// (no "transformer." prefix) are read too; the causal-mask buffers older files carry (attn.bias, attn.masked_bias)
// are not weights and are ignored.
import { float, GraphBuilder, type Value } from '../onnx/graph.ts';
import type { WeightSource } from '../weights/types.ts';
import { gelu, layerNorm, Net } from './layers.ts';
import { WeightReader } from './weight-reader.ts';

/** The config.json fields of a GPT-2 model this builder reads (transformers GPT2Config names). */
export interface Gpt2ConfigJson {
  model_type?: string;
  vocab_size?: number;
  n_positions?: number;
  n_embd?: number;
  n_layer?: number;
  n_head?: number;
  n_inner?: number | null;
  activation_function?: string;
  layer_norm_epsilon?: number;
  scale_attn_weights?: boolean;
  scale_attn_by_inverse_layer_idx?: boolean;
  reorder_and_upcast_attn?: boolean;
  add_cross_attention?: boolean;
  tie_word_embeddings?: boolean;
  eos_token_id?: number | number[] | null;
  [k: string]: unknown;
}

/** The architecture numbers the graph and the decoder need. */
export interface Gpt2Dims {
  vocab: number;
  positions: number;
  embd: number;
  layers: number;
  heads: number;
  headDim: number;
}

const PREFIX = 'transformer.';
const ACTIVATIONS = ['gelu_new', 'gelu_pytorch_tanh', 'gelu', 'relu'] as const;

/** Buffers some files carry that are not weights (the causal mask of transformers < 4.30). */
const isBuffer = (k: string): boolean => /\.attn\.(bias|masked_bias)$/.test(k);

/**
 * The dims of a config, checked against what this builder supports. Throws (naming the field) for a config it
 * cannot build: another model_type, cross-attention, per-layer scaling, an unknown activation.
 */
export function gpt2Dims(c: Gpt2ConfigJson): Gpt2Dims {
  if (c.model_type !== undefined && c.model_type !== 'gpt2') throw new Error(`config.json: model_type "${c.model_type}" is not a GPT-2 model (expected "gpt2")`);
  if (c.add_cross_attention) throw new Error('config.json: add_cross_attention is not supported (a decoder-only GPT-2 is expected)');
  if (c.scale_attn_by_inverse_layer_idx) throw new Error('config.json: scale_attn_by_inverse_layer_idx is not supported');
  const act = c.activation_function ?? 'gelu_new';
  if (!(ACTIVATIONS as readonly string[]).includes(act)) throw new Error(`config.json: activation_function "${act}" is not supported (${ACTIVATIONS.join(', ')})`);
  const embd = c.n_embd ?? 768;
  const heads = c.n_head ?? 12;
  if (embd % heads !== 0) throw new Error(`config.json: n_embd ${embd} is not a multiple of n_head ${heads}`);
  return { vocab: c.vocab_size ?? 50257, positions: c.n_positions ?? 1024, embd, layers: c.n_layer ?? 12, heads, headDim: embd / heads };
}

/** transformers' NewGELUActivation: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))). */
function geluNew(g: GraphBuilder, x: Value): Value {
  const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
  const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [cube, g.scalar(0.044715)])]), g.scalar(Math.sqrt(2 / Math.PI))]);
  return g.op('Mul', [g.op('Mul', [x, g.scalar(0.5)]), g.op('Add', [g.op('Tanh', [inner]), g.scalar(1)])]);
}

/** GPT-2's Conv1D: x @ weight ([in, out], as stored) + bias. */
function conv1d(n: Net, x: Value, prefix: string, inF: number, outF: number): Value {
  const g = n.g;
  return g.op('Add', [g.op('MatMul', [x, n.w.param(g, `${prefix}.weight`, [inF, outF])]), n.w.param(g, `${prefix}.bias`, [outF])]);
}

/**
 * Builds the graph (I/O in the header). Throws naming the weight when the file and the config disagree (shape,
 * missing or unused weights).
 */
export function buildGpt2(config: Gpt2ConfigJson, src: WeightSource, label = 'GPT-2'): { graph: GraphBuilder; dims: Gpt2Dims } {
  const d = gpt2Dims(config);
  const { embd: D, heads: H, headDim: hd } = d;
  const inner = config.n_inner ?? 4 * D;
  const eps = config.layer_norm_epsilon ?? 1e-5;
  const act = config.activation_function ?? 'gelu_new';
  const prefixed = src.keys().some((k) => k.startsWith(PREFIX));
  const reader = new WeightReader(src, label, (name) => (prefixed || !name.startsWith(PREFIX) ? name : name.slice(PREFIX.length)));
  const g = new GraphBuilder('gpt2');
  const n = new Net(g, reader, false);
  const p = PREFIX;

  const ids = g.input('input_ids', 'int64', [1, 'sequence']);
  const past = Array.from({ length: d.layers }, (_, i) => ({
    key: g.input(`past.${i}.key`, 'float32', [1, H, 'past', hd]),
    value: g.input(`past.${i}.value`, 'float32', [1, H, 'past', hd]),
  }));
  const scalarDim = (shapeOf: Value, axis: number): Value => g.op('Gather', [g.op('Shape', [shapeOf]), g.i64([axis], [])], { axis: 0 });
  const P = d.layers > 0 ? scalarDim(past[0]!.key, 2) : g.i64([0], []);
  const S = scalarDim(ids, 1);
  const T = g.op('Add', [P, S]);
  const positions = g.op('Range', [P, T, g.i64([1], [])]);

  const wte = reader.param(g, `${p}wte.weight`, [d.vocab, D]);
  const wpe = reader.param(g, `${p}wpe.weight`, [d.positions, D]);
  let h = g.op('Add', [g.op('Gather', [wte, ids], { axis: 0 }), g.op('Gather', [wpe, positions], { axis: 0 })]);

  // causal mask [S, T]: query i (position P + i) sees keys j <= P + i; masked scores become float32's lowest
  // value, as transformers' eager attention does (torch.finfo(float32).min), so softmax gives them 0
  const rows = g.op('Unsqueeze', [positions, g.i64([1])]);
  const cols = g.op('Unsqueeze', [g.op('Range', [g.i64([0], []), T, g.i64([1], [])]), g.i64([0])]);
  const future = g.op('Greater', [cols, rows]);
  const lowest = g.scalar(-3.4028234663852886e38);
  const scale = config.scale_attn_weights === false ? 1 : 1 / Math.sqrt(hd);
  const toHeads = (x: Value): Value => g.op('Transpose', [g.op('Reshape', [x, g.i64([0, 0, H, hd])])], { perm: [0, 2, 1, 3] });

  const presents: { key: Value; value: Value }[] = [];
  for (let i = 0; i < d.layers; i++) {
    const l = `${p}h.${i}`;
    h = g.scope(l, () => {
      const x = layerNorm(n, h, `${l}.ln_1`, eps);
      const qkv = conv1d(n, x, `${l}.attn.c_attn`, D, 3 * D);
      const [q, k, v] = g.opN('Split', [qkv], 3, { axis: -1, num_outputs: 3 }) as [Value, Value, Value];
      const key = g.op('Concat', [past[i]!.key, toHeads(k)], { axis: 2 });
      const value = g.op('Concat', [past[i]!.value, toHeads(v)], { axis: 2 });
      presents.push({ key, value });
      let scores = g.op('MatMul', [toHeads(q), g.op('Transpose', [key], { perm: [0, 1, 3, 2] })]);
      if (scale !== 1) scores = g.op('Mul', [scores, g.scalar(scale)]);
      const weights = g.op('Softmax', [g.op('Where', [future, lowest, scores])], { axis: -1 });
      const ctx = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [weights, value])], { perm: [0, 2, 1, 3] }), g.i64([0, 0, D])]);
      const a = g.op('Add', [h, conv1d(n, ctx, `${l}.attn.c_proj`, D, D)]);
      let m = conv1d(n, layerNorm(n, a, `${l}.ln_2`, eps), `${l}.mlp.c_fc`, D, inner);
      m = act === 'gelu' ? gelu(g, m) : act === 'relu' ? g.op('Relu', [m]) : geluNew(g, m);
      return g.op('Add', [a, conv1d(n, m, `${l}.mlp.c_proj`, inner, D)]);
    });
  }
  h = layerNorm(n, h, `${p}ln_f`, eps);
  const last = g.op('Gather', [h, g.op('Sub', [S, g.i64([1], [])])], { axis: 1 }); // [1, D]
  const tied = config.tie_word_embeddings !== false;
  const head = tied ? wte : reader.param(g, 'lm_head.weight', [d.vocab, D]);
  g.output(g.op('Gemm', [last, head], { transB: 1, alpha: float(1) }), 'logits', 'float32', [1, d.vocab]);
  for (const [i, pr] of presents.entries()) {
    g.output(pr.key, `present.${i}.key`, 'float32', [1, H, 'total', hd]);
    g.output(pr.value, `present.${i}.value`, 'float32', [1, H, 'total', hd]);
  }
  // a tied lm_head.weight (files written by torch.save keep it, sharing wte's storage) is the table itself
  reader.assertAllUsed((k) => isBuffer(k) || (tied && k === 'lm_head.weight'));
  return { graph: g, dims: d };
}
