// CLIPTextModel (transformers) as an ONNX graph, with clip skip chosen at run time.
// Graph I/O: input_ids int64 [B,77], skip int64 [] (0 = last layer; k = diffusers clip_skip k, i.e.
// hidden_states[-(k+1)]) → hidden_states float32 [B,77,D] after the final LayerNorm.
import { GraphBuilder, type Value } from '../onnx/graph.ts';
import type { WeightSource } from '../weights/types.ts';
import { gelu, layerNorm, linear, mha, Net, quickGelu } from './layers.ts';
import { WeightReader } from './weight-reader.ts';
import { floatTypeOf, type Fp32Island, type Precision } from '../onnx/precision.ts';

export interface ClipTextConfigJson {
  hidden_size?: number;
  num_hidden_layers?: number;
  num_attention_heads?: number;
  intermediate_size?: number;
  max_position_embeddings?: number;
  vocab_size?: number;
  hidden_act?: string;
  layer_norm_eps?: number;
  [k: string]: unknown;
}

export const CLIP_SEQ_LEN = 77;
/** Canonical weight prefix (SD checkpoints, kohya LoRA names); transformers >= 5 writes names without it. */
const PREFIX = 'text_model.';

/** The largest valid `skip` input (hidden_states has layers + 1 entries). The graph cannot reject a larger one
 *  (Gather would wrap a negative index), so callers check against this. */
export function clipMaxSkip(config: ClipTextConfigJson): number {
  return config.num_hidden_layers ?? 12;
}

export interface ClipBuildOptions {
  lora?: boolean;
  /** fp16: float16 weights and activations (hidden_states stays float32); default fp32. */
  precision?: Precision;
  /** Extra float32 islands of an fp16 graph (precision.ts FP32_ISLANDS); only `linear` and `norm` apply (no Conv, mha direct). */
  fp32Islands?: Fp32Island[];
}

export function buildClipText(config: ClipTextConfigJson, src: WeightSource, opts: ClipBuildOptions = {}): { graph: GraphBuilder; net: Net } {
  const d = config.hidden_size ?? 768;
  const layers = config.num_hidden_layers ?? 12;
  const heads = config.num_attention_heads ?? 12;
  const eps = config.layer_norm_eps ?? 1e-5;
  const act = config.hidden_act ?? 'quick_gelu';
  if (act !== 'quick_gelu' && act !== 'gelu') throw new Error(`CLIP text config: hidden_act ${act} is not supported`);
  const prefixed = src.keys().some((k) => k.startsWith(PREFIX));
  const reader = new WeightReader(src, 'CLIP text encoder', prefixed ? (n) => n : (n) => n.slice(PREFIX.length));
  const g = new GraphBuilder('clip_text', { floatType: floatTypeOf(opts.precision) });
  const n = new Net(g, reader, opts.lora ?? false, opts.fp32Islands);
  const p = PREFIX;

  const ids = g.input('input_ids', 'int64', ['batch', CLIP_SEQ_LEN]);
  const skip = g.input('skip', 'int64', []);
  const posW = reader.shape(`${p}embeddings.position_embedding.weight`);
  if (posW[0]! < CLIP_SEQ_LEN) throw new Error(`CLIP text encoder: ${posW[0]} positions < ${CLIP_SEQ_LEN}`);
  const tok = g.op('Gather', [reader.param(g, `${p}embeddings.token_embedding.weight`), ids], { axis: 0 });
  const posAll = reader.param(g, `${p}embeddings.position_embedding.weight`);
  const pos = g.op('Slice', [posAll, g.i64([0]), g.i64([CLIP_SEQ_LEN]), g.i64([0])]);
  let h = g.op('Add', [tok, pos]);

  // causal mask as an additive bias [1, 1, 77, 77], in the attention's type; float16: its lowest finite value
  // (transformers uses torch.finfo(dtype).min), since -1e9 would round to -inf
  const masked = g.floatType === 'float16' ? -65504 : -1e9;
  const mask = new Float32Array(CLIP_SEQ_LEN * CLIP_SEQ_LEN);
  for (let i = 0; i < CLIP_SEQ_LEN; i++) for (let j = i + 1; j < CLIP_SEQ_LEN; j++) mask[i * CLIP_SEQ_LEN + j] = masked;
  const bias = g.act(mask, [1, 1, CLIP_SEQ_LEN, CLIP_SEQ_LEN]);

  const states: Value[] = [h];
  for (let i = 0; i < layers; i++) {
    const l = `${p}encoder.layers.${i}`;
    h = g.scope(l, () => n.withLora(() => {
      let x = layerNorm(n, h, `${l}.layer_norm1`, eps);
      const q = linear(n, x, `${l}.self_attn.q_proj`);
      const k = linear(n, x, `${l}.self_attn.k_proj`);
      const v = linear(n, x, `${l}.self_attn.v_proj`);
      x = g.op('Add', [h, linear(n, mha(g, q, k, v, heads, bias), `${l}.self_attn.out_proj`)]);
      let m = linear(n, layerNorm(n, x, `${l}.layer_norm2`, eps), `${l}.mlp.fc1`);
      m = act === 'gelu' ? gelu(g, m) : quickGelu(g, m);
      return g.op('Add', [x, linear(n, m, `${l}.mlp.fc2`)]);
    }));
    states.push(h);
  }
  // hidden_states[-(skip+1)] = states[layers - skip]
  const stacked = g.op('Concat', states.map((s) => g.op('Unsqueeze', [s, g.i64([0])])), { axis: 0 });
  const index = g.op('Sub', [g.i64([layers], []), skip]);
  const chosen = g.op('Gather', [stacked, index], { axis: 0 });
  g.output(g.fromFloat(layerNorm(n, chosen, `${p}final_layer_norm`, eps)), 'hidden_states', 'float32', ['batch', CLIP_SEQ_LEN, d]);
  // position_ids is a buffer some files carry; the projection head belongs to CLIPTextModelWithProjection.
  reader.assertAllUsed((k) => k.endsWith('embeddings.position_ids'));
  return { graph: g, net: n };
}
