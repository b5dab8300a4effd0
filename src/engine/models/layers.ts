// Layer helpers shared by the network builders, each the ONNX form of one diffusers / transformers module.
// Weight names are the module paths (prefix + ".weight"), so a helper reads exactly the tensors torch would.
import { float, type Dim, type FloatType, type GraphBuilder, MS_DOMAIN, type Value } from '../onnx/graph.ts';
import type { Fp32Island } from '../onnx/precision.ts';
import type { WeightReader } from './weight-reader.ts';

export type LoraKind = 'linear' | 'conv';

/**
 * One LoRA attachment point: graph inputs `<name>.lora_down`, `<name>.lora_up` and `<name>.lora_scale` of rank r
 * (dynamic, one symbolic dim shared by the three). The branch adds up @ diag(scale) @ down to the layer's weight:
 * each rank row of down / column of up is scaled by its own factor (strength × alpha / rank of the LoRA it came
 * from), so a strength change only changes the small scale vector and several LoRAs are a concatenation.
 */
export interface LoraSlot {
  /** The diffusers weight name, e.g. `mid_block.attentions.0.proj_in.weight`. */
  name: string;
  kind: LoraKind;
  inFeatures: number;
  outFeatures: number;
  /** [kh, kw]; [1, 1] for linear. */
  kernel: [number, number];
  /** Input shapes with r as a symbolic dim: linear down [r,in], up [out,r]; conv down [r,in,kh,kw], up [out,r,1,1];
   *  scale [r] for both. */
  downShape: Dim[];
  upShape: Dim[];
  scaleShape: Dim[];
}

/** A network under construction: the graph, its weights, and whether LoRA branches are being emitted. */
export class Net {
  readonly loraSlots: LoraSlot[] = [];
  /** True while building modules that take LoRA (set by the block builders). */
  loraHere = false;
  /** diffusers' upcast_attention (SD 2.1's UNet): in a float16 graph, attention() runs in float32. */
  upcastAttention = false;

  private readonly fp32Islands: ReadonlySet<Fp32Island>;

  /** `fp32Islands`: extra float32 islands of a float16 graph (precision.ts FP32_ISLANDS; `conv` by default on
   *  WebGPU, precision.ts defaultFp32Islands); ignored in a float32 graph. */
  constructor(readonly g: GraphBuilder, readonly w: WeightReader, readonly lora: boolean, fp32Islands: readonly Fp32Island[] = []) {
    this.fp32Islands = new Set(fp32Islands);
  }

  /** The type weights and activations are in (the graph's floatType). */
  get floatType(): FloatType {
    return this.g.floatType;
  }

  /**
   * Runs `op` on its inputs cast to float32 and casts its result back to float16 when `island` is one of this float16
   * network's extra float32 islands; otherwise runs it on the inputs as they are.
   */
  maybeFp32(island: Fp32Island, inputs: Value[], op: (inputs: Value[]) => Value): Value {
    if (this.floatType !== 'float16' || !this.fp32Islands.has(island)) return op(inputs);
    return this.g.cast(op(inputs.map((v) => (v === '' ? v : this.g.cast(v, 'float32')))), 'float16');
  }

  /** Runs fn with LoRA branches on (only if the build asked for LoRA). */
  withLora<T>(fn: () => T): T {
    const prev = this.loraHere;
    this.loraHere = this.lora;
    try {
      return fn();
    } finally {
      this.loraHere = prev;
    }
  }

  private addSlot(name: string, kind: LoraKind, inF: number, outF: number, k: [number, number]): { down: Value; up: Value; scale: Value } {
    const r = `${name}.r`;
    const downShape: Dim[] = kind === 'linear' ? [r, inF] : [r, inF, k[0], k[1]];
    const upShape: Dim[] = kind === 'linear' ? [outF, r] : [outF, r, 1, 1];
    const scaleShape: Dim[] = [r];
    this.loraSlots.push({ name, kind, inFeatures: inF, outFeatures: outF, kernel: k, downShape, upShape, scaleShape });
    // The feeds are float32 (what lora/combine.ts builds); a float16 graph casts them once per run.
    const g = this.g;
    return {
      down: g.toFloat(g.input(`${name}.lora_down`, 'float32', downShape)),
      up: g.toFloat(g.input(`${name}.lora_up`, 'float32', upShape)),
      scale: g.toFloat(g.input(`${name}.lora_scale`, 'float32', scaleShape)),
    };
  }

  /** x @ downᵀ, scaled per rank row (broadcast on the last axis), @ upᵀ. Rank 0 adds exact zeros (ONNX Runtime's
   *  MatMul fills a [M, 0] @ [0, N] product with zeros). */
  loraLinear(name: string, x: Value, inF: number, outF: number): Value {
    const { down, up, scale } = this.addSlot(name, 'linear', inF, outF, [1, 1]);
    const g = this.g;
    const h = g.op('Mul', [g.op('MatMul', [x, g.op('Transpose', [down], { perm: [1, 0] })]), scale]);
    return g.op('MatMul', [h, g.op('Transpose', [up], { perm: [1, 0] })]);
  }

  /** Conv(x, down) [B,r,H,W], scaled per channel (scale as [r,1,1]), then the 1×1 Conv with up. Never feed it rank 0:
   *  ONNX Runtime's CPU Conv leaves its output unwritten when it has no input channels (lora/combine.ts FeedOptions). */
  loraConv(name: string, x: Value, inF: number, outF: number, k: [number, number], strides: number[], pads: number[]): Value {
    const { down, up, scale } = this.addSlot(name, 'conv', inF, outF, k);
    const g = this.g;
    const h = g.op('Mul', [this.maybeFp32('conv', [x, down], (v) => g.op('Conv', v, { strides, pads })), g.op('Unsqueeze', [scale, g.i64([1, 2])])]);
    return this.maybeFp32('conv', [h, up], (v) => g.op('Conv', v));
  }
}

export function linear(n: Net, x: Value, prefix: string, lora = true): Value {
  const g = n.g;
  const name = `${prefix}.weight`;
  const [outF, inF] = n.w.shape(name) as [number, number];
  const inputs = [x, n.w.paramT(g, name)];
  if (n.w.has(`${prefix}.bias`)) inputs.push(n.w.param(g, `${prefix}.bias`, [outF]));
  let y = n.maybeFp32('linear', inputs, ([a, w, b]) => {
    const m = g.op('MatMul', [a!, w!]);
    return b === undefined ? m : g.op('Add', [m, b]);
  });
  if (lora && n.loraHere) y = g.op('Add', [y, n.loraLinear(name, x, inF, outF)]);
  return y;
}

export interface ConvOpts {
  stride?: number;
  /** symmetric padding, or ONNX pads [top, left, bottom, right] */
  pad?: number | number[];
  lora?: boolean;
}

export function conv(n: Net, x: Value, prefix: string, opts: ConvOpts = {}): Value {
  const g = n.g;
  const name = `${prefix}.weight`;
  const [outF, inF, kh, kw] = n.w.shape(name) as [number, number, number, number];
  const p = opts.pad ?? (kh - 1) / 2;
  const pads = typeof p === 'number' ? [p, p, p, p] : p;
  const strides = [opts.stride ?? 1, opts.stride ?? 1];
  const inputs = [x, n.w.param(g, name)];
  if (n.w.has(`${prefix}.bias`)) inputs.push(n.w.param(g, `${prefix}.bias`, [outF]));
  let y = n.maybeFp32('conv', inputs, (v) => g.op('Conv', v, { strides, pads, kernel_shape: [kh, kw] }));
  if ((opts.lora ?? true) && n.loraHere) y = g.op('Add', [y, n.loraConv(name, x, inF, outF, [kh, kw], strides, pads)]);
  return y;
}

/**
 * diffusers / torch GroupNorm. In a float16 graph the statistics are float32 (stash_type 1, the ONNX default made
 * explicit): mean and variance over a group of 4096+ fp16 values would lose precision or overflow (torch's CUDA
 * kernel accumulates in float32 too); scale, bias and the output are float16.
 */
export function groupNorm(n: Net, x: Value, prefix: string, groups: number, eps: number): Value {
  const c = n.w.shape(`${prefix}.weight`)[0]!;
  return n.maybeFp32('norm', [x, n.w.param(n.g, `${prefix}.weight`, [c]), n.w.param(n.g, `${prefix}.bias`, [c])], (v) => n.g.op('GroupNormalization', v, {
    num_groups: groups, epsilon: float(eps), ...(n.floatType === 'float16' ? { stash_type: 1 } : {}),
  }));
}

/** torch LayerNorm over the last axis; statistics in float32 for any input type (stash_type's default, 1). */
export function layerNorm(n: Net, x: Value, prefix: string, eps: number): Value {
  const c = n.w.shape(`${prefix}.weight`)[0]!;
  return n.maybeFp32('norm', [x, n.w.param(n.g, `${prefix}.weight`, [c]), n.w.param(n.g, `${prefix}.bias`, [c])], (v) => n.g.op('LayerNormalization', v, {
    axis: -1, epsilon: float(eps),
  }));
}

export function silu(g: GraphBuilder, x: Value): Value {
  return g.op('Mul', [x, g.op('Sigmoid', [x])]);
}

/** Exact (erf) GELU, torch's default. ONNX Runtime fuses this pattern into its Gelu kernel. */
export function gelu(g: GraphBuilder, x: Value): Value {
  const e = g.op('Erf', [g.op('Mul', [x, g.scalar(Math.SQRT1_2)])]);
  return g.op('Mul', [g.op('Mul', [x, g.scalar(0.5)]), g.op('Add', [e, g.scalar(1)])]);
}

/** CLIP's quick_gelu: x * sigmoid(1.702 x). */
export function quickGelu(g: GraphBuilder, x: Value): Value {
  return g.op('Mul', [x, g.op('Sigmoid', [g.op('Mul', [x, g.scalar(1.702)])])]);
}

/** Scaled dot-product attention over [B, S, heads*d] projections (com.microsoft MultiHeadAttention). */
export function mha(g: GraphBuilder, q: Value, k: Value, v: Value, heads: number, attnBias?: Value): Value {
  const inputs = attnBias ? [q, k, v, '', '', attnBias] : [q, k, v];
  return g.op('MultiHeadAttention', inputs, { num_heads: heads }, { domain: MS_DOMAIN });
}

/**
 * diffusers Attention (to_q/to_k/to_v/to_out.0); context undefined = self-attention. Input [B, S, C]. With
 * n.upcastAttention in a float16 graph, q, k and v are cast to float32 and the attention (scores, softmax, the
 * weighted sum) runs in float32, as diffusers' upcast_attention computes scores and softmax in float32 (SD 2.1's
 * attention overflows float16 otherwise); its output is cast back before to_out.
 */
export function attention(n: Net, x: Value, context: Value | undefined, prefix: string, heads: number): Value {
  const kv = context ?? x;
  const q = linear(n, x, `${prefix}.to_q`);
  const k = linear(n, kv, `${prefix}.to_k`);
  const v = linear(n, kv, `${prefix}.to_v`);
  const g = n.g;
  const upcast = n.upcastAttention && n.floatType === 'float16';
  const attended = upcast
    ? g.toFloat(mha(g, g.fromFloat(q), g.fromFloat(k), g.fromFloat(v), heads))
    : n.maybeFp32('attention', [q, k, v], ([a, b, c]) => mha(g, a!, b!, c!, heads));
  return linear(n, attended, `${prefix}.to_out.0`);
}

/** diffusers FeedForward with GEGLU: net.0.proj → (h, gate) → h * gelu(gate) → net.2. */
export function feedForwardGeglu(n: Net, x: Value, prefix: string): Value {
  const g = n.g;
  const proj = linear(n, x, `${prefix}.net.0.proj`);
  const [h, gate] = g.opN('Split', [proj], 2, { axis: -1, num_outputs: 2 }) as [Value, Value];
  return linear(n, g.op('Mul', [h, gelu(g, gate)]), `${prefix}.net.2`);
}

export interface ResnetOpts {
  groups: number;
  eps: number;
  /** The output channels the config implies (checked against conv1's weight). */
  channels?: number;
}

/** diffusers ResnetBlock2D (time_embedding_norm "default", output_scale_factor 1). temb is silu'd inside. */
export function resnetBlock(n: Net, x: Value, temb: Value | undefined, prefix: string, o: ResnetOpts): Value {
  const g = n.g;
  const out = n.w.shape(`${prefix}.conv1.weight`)[0];
  if (o.channels !== undefined && out !== o.channels) {
    throw new Error(`${n.w.label}: weight ${prefix}.conv1.weight has shape [${n.w.shape(`${prefix}.conv1.weight`)}], the config implies ${o.channels} output channels`);
  }
  return g.scope(prefix, () => {
    let h = silu(g, groupNorm(n, x, `${prefix}.norm1`, o.groups, o.eps));
    h = conv(n, h, `${prefix}.conv1`);
    if (temb !== undefined) {
      const t = linear(n, silu(g, temb), `${prefix}.time_emb_proj`);
      h = g.op('Add', [h, g.op('Unsqueeze', [t, g.i64([2, 3])])]);
    }
    h = silu(g, groupNorm(n, h, `${prefix}.norm2`, o.groups, o.eps));
    h = conv(n, h, `${prefix}.conv2`);
    const shortcut = n.w.has(`${prefix}.conv_shortcut.weight`) ? conv(n, x, `${prefix}.conv_shortcut`) : x;
    return g.op('Add', [shortcut, h]);
  });
}

/** [B, C, H, W] → [B, H*W, C] */
export function toTokens(g: GraphBuilder, x: Value, channels: number): Value {
  return g.op('Transpose', [g.op('Reshape', [x, g.i64([0, channels, -1])])], { perm: [0, 2, 1] });
}

/** [B, H*W, C] → the shape of `like` ([B, C, H, W]) */
export function fromTokens(g: GraphBuilder, x: Value, like: Value): Value {
  return g.op('Reshape', [g.op('Transpose', [x], { perm: [0, 2, 1] }), g.op('Shape', [like])]);
}

/** A hook around the self-attention of a transformer block (ToMe merges tokens there). */
export interface TokenMerge {
  merge(v: Value): Value;
  unmerge(v: Value): Value;
  /** int64 [B, N]: unmerge(v) is v's rows (v seen as [B·M, c]) gathered at these indices. */
  unmergeRows: Value;
}
export type TokenMergeFactory = ((x: Value, hw: { h: Value; w: Value }) => TokenMerge | undefined) & {
  /** A bool scalar graph value: when set, merging runs only where it is true (an If around merge and unmerge, so
   *  one graph serves ToMe on and off and the off branch costs nothing). */
  when?: Value;
};

/** diffusers BasicTransformerBlock (layer norms, self-attn, cross-attn, GEGLU feed-forward). x is [B, S, C]. */
export function basicTransformerBlock(
  n: Net, x: Value, ehs: Value, prefix: string, heads: number, tome?: { factory: TokenMergeFactory; hw: { h: Value; w: Value } },
): Value {
  const g = n.g;
  return g.scope(prefix, () => {
    // tomesd's ToMeBlock: merge the normed input of attn1 only, unmerge its output (merge_attn=True,
    // merge_crossattn=False, merge_mlp=False); the merge is computed from the block input x.
    // In a float16 graph the merge runs as a float32 island (its similarities, counts and means are float32).
    let h = layerNorm(n, x, `${prefix}.norm1`, 1e-5);
    let a: Value;
    const when = tome?.factory.when;
    if (tome && when) {
      // merge in one If, attention outside (its weights and LoRA inputs exist once), unmerge in a second If
      const normed = g.fromFloat(h);
      const [merged, rows] = g.ifElse(when, () => {
        const m = tome.factory(g.fromFloat(x), tome.hw)!;
        return [m.merge(normed), m.unmergeRows];
      }, () => [normed, g.i64([0])], ['float32', 'int64'], 'tome_merge_if');
      const attn = g.fromFloat(attention(n, g.toFloat(merged!), undefined, `${prefix}.attn1`, heads));
      a = g.toFloat(g.ifElse(when, () => [g.op('Gather', [g.op('Reshape', [attn, g.op('Concat', [g.i64([-1]), g.op('Shape', [attn], { start: 2 })], { axis: 0 })]), rows!], { axis: 0 })],
        () => [attn], ['float32'], 'tome_unmerge_if')[0]!);
    } else {
      const m = tome?.factory(g.fromFloat(x), tome.hw);
      if (m) h = g.toFloat(m.merge(g.fromFloat(h)));
      a = attention(n, h, undefined, `${prefix}.attn1`, heads);
      if (m) a = g.toFloat(m.unmerge(g.fromFloat(a)));
    }
    x = g.op('Add', [a, x]);
    h = layerNorm(n, x, `${prefix}.norm2`, 1e-5);
    x = g.op('Add', [attention(n, h, ehs, `${prefix}.attn2`, heads), x]);
    h = layerNorm(n, x, `${prefix}.norm3`, 1e-5);
    return g.op('Add', [feedForwardGeglu(n, h, `${prefix}.ff`), x]);
  });
}

export interface TransformerOpts {
  heads: number;
  groups: number;
  layers: number;
  linearProjection: boolean;
  tome?: TokenMergeFactory;
}

/** diffusers Transformer2DModel (continuous input) around `layers` BasicTransformerBlocks. x is [B, C, H, W]. */
export function transformer2d(n: Net, x: Value, ehs: Value, prefix: string, o: TransformerOpts): Value {
  const g = n.g;
  return g.scope(prefix, () => n.withLora(() => {
    const c = n.w.shape(`${prefix}.norm.weight`)[0]!;
    const shape = g.op('Shape', [x]);
    const hw = {
      h: g.op('Gather', [shape, g.i64([2], [])], { axis: 0 }),
      w: g.op('Gather', [shape, g.i64([3], [])], { axis: 0 }),
    };
    let h = groupNorm(n, x, `${prefix}.norm`, o.groups, 1e-6);
    if (o.linearProjection) {
      h = linear(n, toTokens(g, h, c), `${prefix}.proj_in`);
    } else {
      h = toTokens(g, conv(n, h, `${prefix}.proj_in`), c);
    }
    for (let i = 0; i < o.layers; i++) {
      h = basicTransformerBlock(n, h, ehs, `${prefix}.transformer_blocks.${i}`, o.heads, o.tome ? { factory: o.tome, hw } : undefined);
    }
    h = o.linearProjection ? fromTokens(g, linear(n, h, `${prefix}.proj_out`), x) : conv(n, fromTokens(g, h, x), `${prefix}.proj_out`);
    return g.op('Add', [h, x]);
  }));
}

/** diffusers Downsample2D with a conv: stride 2, padding 1 (UNet) or 0 after a (0,1,0,1) pad (VAE). */
export function downsample(n: Net, x: Value, prefix: string, padding: 0 | 1): Value {
  return n.withLora(() => conv(n, x, `${prefix}.conv`, { stride: 2, pad: padding === 1 ? 1 : [0, 0, 1, 1] }));
}

/** diffusers Upsample2D: nearest ×2 (or to the spatial size of `sizeLike`), then a 3×3 conv. */
export function upsample(n: Net, x: Value, prefix: string, sizeLike?: Value): Value {
  const g = n.g;
  const attrs = { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' };
  let up: Value;
  if (sizeLike) {
    const sizes = g.op('Concat', [g.op('Slice', [g.op('Shape', [x]), g.i64([0]), g.i64([2])]), g.op('Slice', [g.op('Shape', [sizeLike]), g.i64([2]), g.i64([4])])], { axis: 0 });
    up = g.op('Resize', [x, '', '', sizes], attrs);
  } else {
    up = g.op('Resize', [x, '', g.f32([1, 1, 2, 2])], attrs);
  }
  return n.withLora(() => conv(n, up, `${prefix}.conv`));
}

/**
 * diffusers get_timestep_embedding(flip_sin_to_cos, downscale_freq_shift) for timesteps [B] → [B, dim], float32.
 * The frequencies are computed in float32 steps as torch does, so large timesteps match to the last bits. A float16
 * network casts the result (diffusers: `t_emb.to(dtype=sample.dtype)` after time_proj).
 */
export function timestepEmbedding(g: GraphBuilder, t: Value, dim: number, flipSinToCos: boolean, shift: number): Value {
  const half = Math.floor(dim / 2);
  const f = Math.fround;
  const logMax = f(-Math.log(10000));
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = f(Math.exp(f(f(f(i) * logMax) / f(half - shift))));
  const args = g.op('Mul', [g.op('Unsqueeze', [t, g.i64([1])]), g.f32(freqs, [1, half])]);
  const sin = g.op('Sin', [args]);
  const cos = g.op('Cos', [args]);
  if (dim % 2 !== 0) throw new Error('odd timestep embedding dims are not supported');
  return g.op('Concat', flipSinToCos ? [cos, sin] : [sin, cos], { axis: 1 });
}
