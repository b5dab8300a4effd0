// transformers' MarianMTModel (the Helsinki-NLP opus-mt-* layout) as two ONNX graphs for greedy decoding with a
// key/value cache: the encoder, which also projects its output into every decoder layer's cross-attention keys and
// values (computed once per prompt), and one decoder step. Both follow modeling_marian.py: token embeddings scaled
// by sqrt(d_model) (scale_embedding), non-interleaved sinusoidal positions (sin in the first half, cos in the
// second; the file's table when it carries one), post-LayerNorm layers (residual, then LayerNorm, eps 1e-5),
// attention scores q·kᵀ × head_dim^-0.5, the activation of `activation_function`, the shared embedding as LM head
// (transposed, through Gemm) plus final_logits_bias.
//
// Encoder I/O: input_ids int64 [B, S] (unpadded: no attention mask) → last_hidden_state float32 [B, S, D],
//   cross_key_<i> / cross_value_<i> float32 [B, heads, S, head_dim] for each decoder layer i.
// Decoder step I/O: input_ids int64 [B, 1] (the last token), past_key_<i> / past_value_<i> [B, heads, P, head_dim]
//   (P = tokens already decoded, 0 at the first step), cross_key_<i> / cross_value_<i> → logits float32 [B, V]
//   (position P's), present_key_<i> / present_value_<i> [B, heads, P + 1, head_dim].
import { float, GraphBuilder, type Value } from '../onnx/graph.ts';
import type { WeightSource } from '../weights/types.ts';
import { gelu, layerNorm, linear, Net, silu } from './layers.ts';
import { WeightReader } from './weight-reader.ts';

/** The config.json fields of a MarianConfig the graphs depend on (transformers' defaults where absent). */
export interface MarianConfigJson {
  vocab_size?: number;
  decoder_vocab_size?: number | null;
  d_model?: number;
  encoder_layers?: number;
  decoder_layers?: number;
  encoder_attention_heads?: number;
  decoder_attention_heads?: number;
  max_position_embeddings?: number;
  activation_function?: string;
  scale_embedding?: boolean;
  share_encoder_decoder_embeddings?: boolean;
  tie_word_embeddings?: boolean;
  pad_token_id?: number;
  eos_token_id?: number;
  decoder_start_token_id?: number;
  forced_eos_token_id?: number | null;
  bad_words_ids?: number[][] | null;
  max_length?: number;
  [k: string]: unknown;
}

/** The numbers the graphs and the decoding loop use, with transformers' MarianConfig defaults. */
export interface MarianDims {
  vocab: number;
  d: number;
  encoderLayers: number;
  decoderLayers: number;
  encoderHeads: number;
  decoderHeads: number;
  maxPositions: number;
  activation: 'swish' | 'gelu' | 'relu' | 'gelu_new';
  scaleEmbedding: boolean;
  shared: boolean;
}

const ACTIVATIONS: Record<string, MarianDims['activation']> = { swish: 'swish', silu: 'swish', gelu: 'gelu', relu: 'relu', gelu_new: 'gelu_new' };

/** Reads a Marian config; throws naming the field for what the graphs cannot build. */
export function marianDims(c: MarianConfigJson): MarianDims {
  const act = ACTIVATIONS[c.activation_function ?? 'gelu'];
  if (!act) throw new Error(`Marian config: activation_function "${c.activation_function}" is not supported (swish, silu, gelu, gelu_new, relu)`);
  const vocab = c.vocab_size ?? 58101;
  const shared = c.share_encoder_decoder_embeddings ?? true;
  if (!shared && c.decoder_vocab_size != null && c.decoder_vocab_size !== vocab) {
    throw new Error('Marian config: a decoder_vocab_size other than vocab_size (separate vocabularies) is not supported');
  }
  const dims: MarianDims = {
    vocab, d: c.d_model ?? 1024, encoderLayers: c.encoder_layers ?? 12, decoderLayers: c.decoder_layers ?? 12,
    encoderHeads: c.encoder_attention_heads ?? 16, decoderHeads: c.decoder_attention_heads ?? 16,
    maxPositions: c.max_position_embeddings ?? 1024, activation: act, scaleEmbedding: c.scale_embedding ?? false, shared,
  };
  if (dims.d % dims.encoderHeads || dims.d % dims.decoderHeads) throw new Error(`Marian config: d_model ${dims.d} is not divisible by the attention heads`);
  return dims;
}

/**
 * MarianSinusoidalPositionalEmbedding.create_weight: position p, feature j → p / 10000^(2⌊j/2⌋/dim); sin of the
 * even features in the first half, cos of the odd ones in the second (not interleaved). [positions, dim] float32.
 */
export function marianPositions(positions: number, dim: number): Float32Array {
  const out = new Float32Array(positions * dim);
  const sentinel = dim % 2 === 0 ? dim / 2 : (dim >> 1) + 1;
  for (let p = 0; p < positions; p++) {
    for (let j = 0; j < dim; j++) {
      const angle = p / Math.pow(10000, (2 * Math.floor(j / 2)) / dim);
      if (j % 2 === 0) out[p * dim + j / 2] = Math.sin(angle);
      else out[p * dim + sentinel + (j - 1) / 2] = Math.cos(angle);
    }
  }
  return out;
}

/** The weight names of the token embeddings and LM head in a file (tied copies may or may not be stored). */
function embeddingNames(src: WeightSource, dims: MarianDims): { encoder: string; decoder: string; lmHead: string; aliases: Set<string> } {
  const has = (k: string): boolean => src.info(k) !== undefined;
  const first = (names: string[], what: string): string => {
    const n = names.find(has);
    if (!n) throw new Error(`Marian model: missing weight ${names[0]} (${what})`);
    return n;
  };
  const candidates = ['model.shared.weight', 'model.encoder.embed_tokens.weight', 'model.decoder.embed_tokens.weight', 'lm_head.weight'];
  if (dims.shared) {
    // one embedding for encoder, decoder and (tied) LM head; transformers ties the others to model.shared on load
    const e = first(candidates.slice(0, 3), 'the shared token embedding');
    return { encoder: e, decoder: e, lmHead: e, aliases: new Set(candidates.filter((k) => k !== e)) };
  }
  const encoder = first(['model.encoder.embed_tokens.weight', 'model.shared.weight'], 'the encoder token embedding');
  const decoder = first(['model.decoder.embed_tokens.weight'], 'the decoder token embedding');
  return { encoder, decoder, lmHead: has('lm_head.weight') ? 'lm_head.weight' : decoder, aliases: new Set(candidates.filter((k) => k !== encoder && k !== decoder && k !== 'lm_head.weight')) };
}

function activation(g: GraphBuilder, x: Value, act: MarianDims['activation']): Value {
  switch (act) {
    case 'swish': return silu(g, x);
    case 'gelu': return gelu(g, x);
    case 'relu': return g.op('Relu', [x]);
    case 'gelu_new': {
      // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
      const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [g.op('Mul', [g.op('Mul', [x, x]), x]), g.scalar(0.044715)])]), g.scalar(Math.sqrt(2 / Math.PI))]);
      return g.op('Mul', [g.op('Mul', [x, g.scalar(0.5)]), g.op('Add', [g.op('Tanh', [inner]), g.scalar(1)])]);
    }
  }
}

/** [B, T, heads·hd] → [B, heads, T, hd] */
function splitHeads(g: GraphBuilder, x: Value, heads: number, hd: number): Value {
  return g.op('Transpose', [g.op('Reshape', [x, g.i64([0, 0, heads, hd])])], { perm: [0, 2, 1, 3] });
}

/** eager_attention_forward without a mask: softmax(q·kᵀ × hd^-0.5)·v, heads merged back: [B, T, heads·hd]. */
function attend(g: GraphBuilder, q: Value, k: Value, v: Value, heads: number, hd: number): Value {
  const scores = g.op('Mul', [g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]), g.scalar(hd ** -0.5)]);
  const o = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
  return g.op('Reshape', [g.op('Transpose', [o], { perm: [0, 2, 1, 3] }), g.i64([0, 0, heads * hd])]);
}

/** Post-LN feed-forward block: LayerNorm(x + fc2(act(fc1(x)))). */
function feedForward(n: Net, x: Value, prefix: string, act: MarianDims['activation']): Value {
  const h = linear(n, activation(n.g, linear(n, x, `${prefix}.fc1`, false), act), `${prefix}.fc2`, false);
  return layerNorm(n, n.g.op('Add', [x, h]), `${prefix}.final_layer_norm`, 1e-5);
}

/** The positions table of a side: the file's embed_positions.weight when present (checked), else computed. */
function positionTable(n: Net, side: 'encoder' | 'decoder', dims: MarianDims): Value {
  const name = `model.${side}.embed_positions.weight`;
  if (n.w.has(name)) return n.w.param(n.g, name, [dims.maxPositions, dims.d]);
  return n.g.f32(marianPositions(dims.maxPositions, dims.d), [dims.maxPositions, dims.d]);
}

function embedTokens(n: Net, table: Value, ids: Value, dims: MarianDims): Value {
  const tok = n.g.op('Gather', [table, ids], { axis: 0 });
  return dims.scaleEmbedding ? n.g.op('Mul', [tok, n.g.scalar(Math.sqrt(dims.d))]) : tok;
}

export interface MarianGraphs {
  encoder: GraphBuilder;
  decoder: GraphBuilder;
}

/**
 * Builds the encoder and decoder-step graphs of a MarianMTModel from its weights (names as transformers saves
 * them: model.encoder.*, model.decoder.*, model.shared.weight, lm_head.weight, final_logits_bias). Throws for a
 * missing weight, a shape the config does not imply, or a weight neither graph uses.
 */
export function buildMarian(config: MarianConfigJson, src: WeightSource): MarianGraphs {
  const dims = marianDims(config);
  const emb = embeddingNames(src, dims);
  const encReader = new WeightReader(src, 'Marian encoder');
  const decReader = new WeightReader(src, 'Marian decoder');
  const V = dims.vocab, D = dims.d;

  // ---- encoder ----
  const ge = new GraphBuilder('marian_encoder');
  const ne = new Net(ge, encReader, false);
  const ids = ge.input('input_ids', 'int64', ['batch', 'sequence']);
  const seq = ge.op('Slice', [ge.op('Shape', [ids]), ge.i64([1]), ge.i64([2])]);
  const encPos = ge.op('Slice', [positionTable(ne, 'encoder', dims), ge.i64([0]), seq, ge.i64([0])]);
  let h = ge.op('Add', [embedTokens(ne, encReader.param(ge, emb.encoder, [V, D]), ids, dims), encPos]);
  const ehd = D / dims.encoderHeads;
  for (let i = 0; i < dims.encoderLayers; i++) {
    const l = `model.encoder.layers.${i}`;
    h = ge.scope(l, () => {
      const split = (name: string): Value => splitHeads(ge, linear(ne, h, `${l}.self_attn.${name}`, false), dims.encoderHeads, ehd);
      const a = attend(ge, split('q_proj'), split('k_proj'), split('v_proj'), dims.encoderHeads, ehd);
      const x = layerNorm(ne, ge.op('Add', [h, linear(ne, a, `${l}.self_attn.out_proj`, false)]), `${l}.self_attn_layer_norm`, 1e-5);
      return feedForward(ne, x, l, dims.activation);
    });
  }
  ge.output(h, 'last_hidden_state', 'float32', ['batch', 'sequence', D]);
  const dhd = D / dims.decoderHeads;
  for (let i = 0; i < dims.decoderLayers; i++) {
    const l = `model.decoder.layers.${i}.encoder_attn`;
    ge.output(splitHeads(ge, linear(ne, h, `${l}.k_proj`, false), dims.decoderHeads, dhd), `cross_key_${i}`, 'float32', ['batch', dims.decoderHeads, 'sequence', dhd]);
    ge.output(splitHeads(ge, linear(ne, h, `${l}.v_proj`, false), dims.decoderHeads, dhd), `cross_value_${i}`, 'float32', ['batch', dims.decoderHeads, 'sequence', dhd]);
  }

  // ---- decoder step ----
  const gd = new GraphBuilder('marian_decoder_step');
  const nd = new Net(gd, decReader, false);
  const tokIds = gd.input('input_ids', 'int64', ['batch', 1]);
  const pasts = Array.from({ length: dims.decoderLayers }, (_, i) => ({
    key: gd.input(`past_key_${i}`, 'float32', ['batch', dims.decoderHeads, 'past', dhd]),
    value: gd.input(`past_value_${i}`, 'float32', ['batch', dims.decoderHeads, 'past', dhd]),
    crossKey: gd.input(`cross_key_${i}`, 'float32', ['batch', dims.decoderHeads, 'sequence', dhd]),
    crossValue: gd.input(`cross_value_${i}`, 'float32', ['batch', dims.decoderHeads, 'sequence', dhd]),
  }));
  // the new token's position is the number of tokens already in the cache
  const past = gd.op('Slice', [gd.op('Shape', [pasts[0]!.key]), gd.i64([2]), gd.i64([3])]);
  const decPos = gd.op('Gather', [positionTable(nd, 'decoder', dims), past], { axis: 0 });
  const decTable = decReader.param(gd, emb.decoder, [V, D]);
  let y = gd.op('Add', [embedTokens(nd, decTable, tokIds, dims), decPos]);
  const presents: { key: Value; value: Value }[] = [];
  for (let i = 0; i < dims.decoderLayers; i++) {
    const l = `model.decoder.layers.${i}`;
    const p = pasts[i]!;
    y = gd.scope(l, () => {
      const proj = (name: string, x: Value): Value => splitHeads(gd, linear(nd, x, `${l}.${name}`, false), dims.decoderHeads, dhd);
      const key = gd.op('Concat', [p.key, proj('self_attn.k_proj', y)], { axis: 2 });
      const value = gd.op('Concat', [p.value, proj('self_attn.v_proj', y)], { axis: 2 });
      presents.push({ key, value });
      const a = attend(gd, proj('self_attn.q_proj', y), key, value, dims.decoderHeads, dhd);
      let x = layerNorm(nd, gd.op('Add', [y, linear(nd, a, `${l}.self_attn.out_proj`, false)]), `${l}.self_attn_layer_norm`, 1e-5);
      const c = attend(gd, proj('encoder_attn.q_proj', x), p.crossKey, p.crossValue, dims.decoderHeads, dhd);
      x = layerNorm(nd, gd.op('Add', [x, linear(nd, c, `${l}.encoder_attn.out_proj`, false)]), `${l}.encoder_attn_layer_norm`, 1e-5);
      return feedForward(nd, x, l, dims.activation);
    });
  }
  // LM head: Gemm with transB reads the [V, D] embedding as stored (no transposed copy), plus final_logits_bias
  const head = emb.lmHead === emb.decoder ? decTable : decReader.param(gd, emb.lmHead, [V, D]);
  const bias = src.info('final_logits_bias') ? gd.op('Reshape', [decReader.param(gd, 'final_logits_bias', [1, V]), gd.i64([V])]) : gd.f32(new Float32Array(V), [V]);
  const logits = gd.op('Gemm', [gd.op('Reshape', [y, gd.i64([-1, D])]), head, bias], { transB: 1, alpha: float(1), beta: float(1) });
  gd.output(logits, 'logits', 'float32', ['batch', V]);
  // (outside the layer scopes: an output's name is its scope path plus its name)
  for (const [i, p] of presents.entries()) {
    gd.output(p.key, `present_key_${i}`, 'float32', ['batch', dims.decoderHeads, 'present', dhd]);
    gd.output(p.value, `present_value_${i}`, 'float32', ['batch', dims.decoderHeads, 'present', dhd]);
  }

  // every weight of the file is used by one of the graphs (tied copies of the embedding excepted)
  const unusedByEncoder = new Set(encReader.unused());
  const rest = decReader.unused().filter((k) => unusedByEncoder.has(k) && !emb.aliases.has(k));
  if (rest.length) throw new Error(`Marian model: ${rest.length} weight(s) not used by the config: ${rest.slice(0, 20).join(', ')}`);
  return { encoder: ge, decoder: gd };
}
