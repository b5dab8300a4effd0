// UniFormer-S + UperNet on ADE20k (upernet_global_small.pth; the "seg_ufade20k" annotator of ControlNet 1.1:
// lllyasviel/ControlNet-v1-1-nightly annotator/uniformer, its vendored mmseg EncoderDecoder with the config
// exp/upernet_global_small/config.py) built from its original checkpoint: weight names are the keys of the file's
// "state_dict" (backbone.*, decode_head.*), widths and depths are read from the tensors.
// Backbone (mmseg/models/backbones/uniformer.py, windows=False, hybrid=False): four stages, each a PatchEmbed (conv
// with kernel = stride = 4, 2, 2, 2, then LayerNorm eps 1e-5 over channels) and its blocks: stages 1-2 CBlocks
// (x + dwconv3x3(x); x + conv2(dwconv5x5(conv1(BN(x)))); x + fc2(GELU(fc1(BN(x)))), 1x1 convs, BatchNorm eps 1e-5),
// stages 3-4 SABlocks (x + dwconv3x3(x), then global multi-head self-attention and an MLP over the H*W tokens,
// pre-norm LayerNorm eps 1e-6, heads = width / 64: the config's head_dim, not recorded in the checkpoint). Each
// stage's output goes through its LayerNorm norm1..norm4 (eps 1e-6) to the head; the next stage reads it un-normed.
// Head (mmseg UPerHead, pool_scales (1, 2, 3, 6), align_corners False): every ConvModule is conv (no bias) + BN (eps
// 1e-5) + ReLU; a pyramid pooling module on the last stage (adaptive average pooling to 1, 2, 3, 6 cells, 1x1
// ConvModule, bilinear back), lateral 1x1 ConvModules, the top-down path (bilinear resize and add), 3x3 fpn_convs,
// everything resized to the first level, concatenated, fpn_bottleneck and the 1x1 conv_seg (150 classes); dropout is
// off in eval. Then EncoderDecoder's whole-image inference: the logits resized bilinearly to the input's size, then to
// the original image's size (rescale=True), whose argmax over classes is the class map (the annotator's softmax
// before argmax changes no order but rounding ties).
// Input x: [1, 3, h, w], the image as mmseg's test pipeline normalises it (see neural/uniformer.ts); input
// output_size: int64 [2] (the original image's height and width). Outputs: logits [1, classes, H, W] at that size,
// labels int64 [1, H, W] (first maximum on ties, as torch.argmax).
// Weights the inference never reads are accepted and left out: auxiliary_head.* (mmseg's FCNHead on stage 3, used
// only for the training loss; EncoderDecoder.simple_test never runs it) and BatchNorm num_batches_tracked counters.
import { float, GraphBuilder, type Value } from '../../onnx/graph.ts';
import { gelu, layerNorm, linear, mha, Net, toTokens, fromTokens } from '../layers.ts';
import { WeightReader } from '../weight-reader.ts';
import type { WeightSource } from '../../weights/types.ts';

/** UniFormer-S's attention head width (the config's head_dim); heads = stage width / HEAD_DIM. */
export const HEAD_DIM = 64;
/** UPerHead's pyramid pooling cells (the config's pool_scales); not recorded in the checkpoint. */
const POOL_SCALES = [1, 2, 3, 6] as const;
/** The patch size of each stage's PatchEmbed (4, then 2, 2, 2). */
const PATCH = [4, 2, 2, 2] as const;
/** Checkpoint entries the forward pass does not read (see the header). */
const UNREAD = ['auxiliary_head.'];

class Builder {
  readonly g: GraphBuilder;
  readonly w: WeightReader;

  constructor(readonly n: Net, readonly label: string, readonly headDim: number) {
    this.g = n.g;
    this.w = n.w;
  }

  /** nn.Conv2d with the kernel's own size; depthwise when the kernel has one input channel per group. */
  conv(x: Value, prefix: string, o: { stride?: number; pad?: number; depthwise?: boolean } = {}): Value {
    const name = `${prefix}.weight`;
    const shape = this.w.shape(name);
    if (shape.length !== 4) throw new Error(`${this.label}: weight ${name} has shape [${shape}], expected a conv kernel`);
    const [out, , kh, kw] = shape as [number, number, number, number];
    if (o.depthwise && shape[1] !== 1) throw new Error(`${this.label}: weight ${name} has shape [${shape}], expected a depthwise kernel [C, 1, k, k]`);
    const p = o.pad ?? (kh - 1) / 2;
    const inputs = [x, this.w.param(this.g, name)];
    if (this.w.has(`${prefix}.bias`)) inputs.push(this.w.param(this.g, `${prefix}.bias`, [out]));
    return this.g.op('Conv', inputs, { kernel_shape: [kh, kw], strides: [o.stride ?? 1, o.stride ?? 1], pads: [p, p, p, p], group: o.depthwise ? out : 1 });
  }

  /** nn.BatchNorm2d in eval mode (running statistics, eps 1e-5). */
  bn(x: Value, prefix: string): Value {
    const c = this.w.shape(`${prefix}.weight`)[0]!;
    const p = (k: string) => this.w.param(this.g, `${prefix}.${k}`, [c]);
    return this.g.op('BatchNormalization', [x, p('weight'), p('bias'), p('running_mean'), p('running_var')], { epsilon: float(1e-5) });
  }

  /** LayerNorm over the channels of an NCHW map (the permute / norm / permute of PatchEmbed and the stage norms). */
  channelNorm(x: Value, prefix: string, eps: number): Value {
    const c = this.w.shape(`${prefix}.weight`)[0]!;
    return fromTokens(this.g, layerNorm(this.n, toTokens(this.g, x, c), prefix, eps), x);
  }

  /** CBlock: convolutional relation aggregator with BatchNorm, and a 1x1-conv MLP. */
  cblock(x: Value, p: string): Value {
    const g = this.g;
    x = g.op('Add', [x, this.conv(x, `${p}.pos_embed`, { depthwise: true })]);
    const a = this.conv(this.conv(this.conv(this.bn(x, `${p}.norm1`), `${p}.conv1`), `${p}.attn`, { depthwise: true }), `${p}.conv2`);
    x = g.op('Add', [x, a]);
    return g.op('Add', [x, this.conv(gelu(g, this.conv(this.bn(x, `${p}.norm2`), `${p}.mlp.fc1`)), `${p}.mlp.fc2`)]);
  }

  /** SABlock: x + dwconv3x3(x), then a pre-norm transformer block (global attention) over its H*W tokens. */
  sablock(x: Value, p: string): Value {
    const g = this.g, n = this.n;
    x = g.op('Add', [x, this.conv(x, `${p}.pos_embed`, { depthwise: true })]);
    const dim = this.w.shape(`${p}.norm1.weight`)[0]!;
    if (dim % this.headDim !== 0) throw new Error(`${this.label}: ${p} has width ${dim}, not a multiple of the head width ${this.headDim}`);
    let t = toTokens(g, x, dim);
    const qkv = linear(n, layerNorm(n, t, `${p}.norm1`, 1e-6), `${p}.attn.qkv`, false);
    const [q, k, v] = g.opN('Split', [qkv], 3, { axis: -1, num_outputs: 3 }) as [Value, Value, Value];
    t = g.op('Add', [t, linear(n, mha(g, q, k, v, dim / this.headDim), `${p}.attn.proj`, false)]);
    const mlp = linear(n, gelu(g, linear(n, layerNorm(n, t, `${p}.norm2`, 1e-6), `${p}.mlp.fc1`, false)), `${p}.mlp.fc2`, false);
    return fromTokens(g, g.op('Add', [t, mlp]), x);
  }

  /** mmcv ConvModule(conv without bias, BN, ReLU). */
  convModule(x: Value, p: string): Value {
    if (this.w.has(`${p}.conv.bias`)) throw new Error(`${this.label}: ${p}.conv has a bias, expected a ConvModule with BatchNorm`);
    return this.g.op('Relu', [this.bn(this.conv(x, `${p}.conv`), `${p}.bn`)]);
  }

  /** F.interpolate(x, size=like's H, W, mode='bilinear', align_corners=False) (mmseg's resize). */
  resizeLike(x: Value, like: Value): Value {
    return this.resizeTo(x, this.g.op('Shape', [like], { start: 2 }));
  }

  /** The same to an int64 [2] size (H, W). */
  resizeTo(x: Value, hw: Value): Value {
    const g = this.g;
    const sizes = g.op('Concat', [g.op('Shape', [x], { end: 2 }), hw], { axis: 0 });
    return g.op('Resize', [x, '', '', sizes], { mode: 'linear', coordinate_transformation_mode: 'half_pixel' });
  }

  /**
   * nn.AdaptiveAvgPool2d(s) of [1, C, H, W] for any H, W: cell i averages rows floor(i*H/s) .. ceil((i+1)*H/s) - 1
   * (columns likewise), written as P_h · x · P_wᵀ with P's rows the cells' averaging weights.
   */
  adaptiveAvgPool(x: Value, s: number): Value {
    const g = this.g;
    if (s === 1) return g.op('GlobalAveragePool', [x]);
    const poolMatrix = (size: Value): Value => {
      // size: int64 [1]; returns float32 [s, size]
      const cells = g.op('Unsqueeze', [g.i64([...Array(s).keys()]), g.i64([1])]); // [s, 1]
      const start = g.op('Div', [g.op('Mul', [cells, size]), g.i64([s])]);
      const end = g.op('Div', [g.op('Add', [g.op('Mul', [g.op('Add', [cells, g.i64([1])]), size]), g.i64([s - 1])]), g.i64([s])]);
      const idx = g.op('Unsqueeze', [g.op('Range', [g.i64([0], []), g.op('Squeeze', [size]), g.i64([1], [])]), g.i64([0])]); // [1, size]
      const inside = g.op('And', [g.op('GreaterOrEqual', [idx, start]), g.op('Less', [idx, end])]);
      const count = g.op('Cast', [g.op('Sub', [end, start])], { to: 1 });
      return g.op('Div', [g.op('Cast', [inside], { to: 1 }), count]);
    };
    const shape = g.op('Shape', [x]);
    const ph = poolMatrix(g.op('Slice', [shape, g.i64([2]), g.i64([3]), g.i64([0])]));
    const pw = poolMatrix(g.op('Slice', [shape, g.i64([3]), g.i64([4]), g.i64([0])]));
    return g.op('MatMul', [g.op('MatMul', [ph, x]), g.op('Transpose', [pw], { perm: [1, 0] })]);
  }
}

/** Options of buildUniformerUpernet. */
export interface UniformerOptions {
  /** attention head width (64 in upernet_global_small's config; not recorded in the checkpoint) */
  headDim?: number;
}

/**
 * Builds UniFormer + UperNet from the checkpoint's keys (the "state_dict" of upernet_global_small.pth, read under
 * "state_dict." when the source keeps it nested); throws naming a missing or unused key (a foreign file) or a stage
 * layout that is not UniFormer's (4 stages: CBlocks, CBlocks, SABlocks, SABlocks).
 */
export function buildUniformerUpernet(src: WeightSource, label = 'upernet_global_small', o: UniformerOptions = {}): GraphBuilder {
  const probe = 'backbone.patch_embed1.proj.weight';
  const found = src.keys().find((k) => k.endsWith(probe));
  if (!found) throw new Error(`${label}: missing weight ${probe} (not a UniFormer + UperNet checkpoint)`);
  const prefix = found.slice(0, found.length - probe.length);
  const g = new GraphBuilder('uniformer_upernet');
  const w = new WeightReader(src, label, (k) => prefix + k);
  const n = new Net(g, w, false);
  const b = new Builder(n, label, o.headDim ?? HEAD_DIM);
  const x = g.input('x', 'float32', [1, 3, 'h', 'w']);
  const outputSize = g.input('output_size', 'int64', [2]);

  // backbone: four stages, their normed outputs feed the head
  const features: Value[] = [];
  let h = x;
  for (let s = 1; s <= 4; s++) {
    const pe = `backbone.patch_embed${s}`;
    h = b.channelNorm(b.conv(h, `${pe}.proj`, { stride: PATCH[s - 1], pad: 0 }), `${pe}.norm`, 1e-5);
    const conv = s <= 2;
    let i = 0;
    for (; w.has(`backbone.blocks${s}.${i}.pos_embed.weight`); i++) {
      const p = `backbone.blocks${s}.${i}`;
      const isConvBlock = w.has(`${p}.conv1.weight`);
      if (isConvBlock !== conv) throw new Error(`${label}: ${p} is ${isConvBlock ? 'a CBlock' : 'an SABlock'}, expected ${conv ? 'CBlocks' : 'SABlocks'} in stage ${s}`);
      h = conv ? b.cblock(h, p) : b.sablock(h, p);
    }
    if (i === 0) throw new Error(`${label}: stage ${s} has no blocks (missing weight backbone.blocks${s}.0.pos_embed.weight)`);
    features.push(b.channelNorm(h, `backbone.norm${s}`, 1e-6));
  }
  if (w.has('backbone.patch_embed5.proj.weight')) throw new Error(`${label}: more than 4 stages (not UniFormer)`);

  // UPerHead: pyramid pooling on the last level, laterals, top-down path, fpn convs, fused
  const D = 'decode_head';
  const top = features[3]!;
  const pooled = POOL_SCALES.map((s, j) => {
    if (!w.has(`${D}.psp_modules.${j}.1.conv.weight`)) throw new Error(`${label}: missing weight ${D}.psp_modules.${j}.1.conv.weight (UPerHead pool_scales ${POOL_SCALES.join(', ')})`);
    return b.resizeLike(b.convModule(b.adaptiveAvgPool(top, s), `${D}.psp_modules.${j}.1`), top);
  });
  const laterals = features.slice(0, 3).map((f, i) => b.convModule(f, `${D}.lateral_convs.${i}`));
  laterals.push(b.convModule(g.op('Concat', [top, ...pooled], { axis: 1 }), `${D}.bottleneck`));
  for (let i = 3; i > 0; i--) laterals[i - 1] = g.op('Add', [laterals[i - 1]!, b.resizeLike(laterals[i]!, laterals[i - 1]!)]);
  const outs = laterals.slice(0, 3).map((l, i) => b.convModule(l, `${D}.fpn_convs.${i}`));
  outs.push(laterals[3]!);
  const fused = g.op('Concat', outs.map((v, i) => (i === 0 ? v : b.resizeLike(v, outs[0]!))), { axis: 1 });
  const head = b.conv(b.convModule(fused, `${D}.fpn_bottleneck`), `${D}.conv_seg`, { pad: 0 });

  // EncoderDecoder.encode_decode (to the input's size), then whole_inference's rescale to the original size
  const logits = b.resizeTo(b.resizeLike(head, x), outputSize);
  g.output(logits, 'logits', 'float32', [1, w.shape(`${D}.conv_seg.weight`)[0]!, 'H', 'W']);
  g.output(g.op('ArgMax', [logits], { axis: 1, keepdims: 0, select_last_index: 0 }), 'labels', 'int64', [1, 'H', 'W']);
  w.assertAllUsed((k) => !k.startsWith(prefix) || k.endsWith('.num_batches_tracked') || UNREAD.some((u) => k.startsWith(prefix + u)));
  return g;
}
