// MiDaS DPT-Hybrid (isl-org/MiDaS; the depth annotator of ControlNet 1.1: controlnet_aux 0.0.10 MidasDetector,
// DPTDepthModel(backbone "vitb_rn50_384", readout "project", non_negative=True)) built from its original checkpoint
// (dpt_hybrid-midas-501f0c75.pt, a plain state_dict; a file holding {"model", "optimizer"} is read under "model."):
// weight names are the checkpoint's keys, widths and depths are read from the tensors.
// Encoder: timm's R50+ViT-B/16 hybrid (vit_base_r50_s16_384, as timm 1.0.31 builds it): a ResNetV2 without
// pre-activation (StdConv2dSame with weight standardization eps 1e-8 and TF "SAME" padding, GroupNorm(32) eps 1e-5
// + ReLU, 7x7/2 stem and SAME max pool) whose stages 0 and 1 are DPT's layer_1 (H/4) and layer_2 (H/8) and whose
// last stage (H/16) is the ViT's patch embedding (1x1 proj); 12 pre-norm ViT blocks (LayerNorm eps 1e-6, 12 heads,
// exact GELU) with the 24x24 position embeddings resized bilinearly (align_corners=False) to the input's grid; the
// outputs of blocks 8 and 11 become layer_3 (H/16) and layer_4 (H/32) through the "project" readout (the class
// token concatenated to every patch token, Linear + GELU) and 1x1 / 3x3-stride-2 convs. Decoder: DPT's scratch
// (3x3 layerN_rn convs, four fusion blocks of residual conv units with x2 align_corners upsampling) and the depth
// head. Input [1,3,H,W] RGB scaled to [-1,1] (pixels / 127.5 - 1), H and W multiples of 32; output [1,H,W] relative
// inverse depth >= 0 before any post-processing, the contract of dense.ts midasDepth.
// Weights in the checkpoint that the forward pass never reads are accepted and left out: the ViT's final norm and
// classifier head (forward_flex's result is unused; DPT reads the block hooks) and refinenet4.resConfUnit1 (the
// deepest fusion block has no skip input).
import { GraphBuilder, type Value } from '../../onnx/graph.ts';
import { conv, gelu, groupNorm, layerNorm, linear, mha, Net, toTokens, fromTokens } from '../layers.ts';
import { WeightReader } from '../weight-reader.ts';
import type { WeightSource } from '../../weights/types.ts';

const VIT = 'pretrained.model';
const RESNET = `${VIT}.patch_embed.backbone`;
/** ViT-B's attention heads (timm vit_base_r50_s16_384: num_heads=12); not recorded in the checkpoint. */
const HEADS = 12;
/** timm GroupNormAct's groups in ResNetV2; not recorded in the checkpoint. */
const GROUPS = 32;
/** The ViT blocks whose outputs DPT reassembles into layer_3 and layer_4 (hooks [0, 1, 8, 11] of vitb_rn50_384). */
const HOOKS = [8, 11] as const;
/** Checkpoint entries the forward pass does not read (see the header). */
const UNREAD = [`${VIT}.norm.`, `${VIT}.head.`, 'scratch.refinenet4.resConfUnit1.'];

/**
 * Weight standardization of a StdConv2d kernel [O, ...]: per output channel (w - mean) / sqrt(var + eps) with the
 * biased variance, as timm computes it with F.batch_norm(training=True) at every forward (here once, in float64).
 */
export function standardizeKernel(w: Float32Array, outChannels: number, eps: number): Float32Array {
  const n = w.length / outChannels;
  const out = new Float32Array(w.length);
  for (let o = 0; o < outChannels; o++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += w[o * n + i]!;
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (w[o * n + i]! - mean) ** 2;
    const inv = 1 / Math.sqrt(v / n + eps);
    for (let i = 0; i < n; i++) out[o * n + i] = (w[o * n + i]! - mean) * inv;
  }
  return out;
}

class Builder {
  readonly g: GraphBuilder;
  readonly w: WeightReader;

  constructor(readonly n: Net, readonly label: string) {
    this.g = n.g;
    this.w = n.w;
  }

  /** timm StdConv2dSame (no bias): standardized kernel, TF SAME padding (symmetric for 3x3 stride 1). */
  stdConv(x: Value, prefix: string, stride = 1): Value {
    const name = `${prefix}.weight`;
    const shape = this.w.shape(name);
    if (shape.length !== 4) throw new Error(`${this.label}: weight ${name} has shape [${shape}], expected a conv kernel`);
    const [out, , kh, kw] = shape as [number, number, number, number];
    const weight = this.w.paramWith(this.g, name, shape, (v) => standardizeKernel(v, out, 1e-8));
    return this.g.op('Conv', [x, weight], { kernel_shape: [kh, kw], strides: [stride, stride], ...(kh > 1 ? { auto_pad: 'SAME_UPPER' } : {}) });
  }

  /** timm GroupNormAct: GroupNorm(32, eps 1e-5), then ReLU unless `act` is false. */
  gn(x: Value, prefix: string, act = true): Value {
    const y = groupNorm(this.n, x, prefix, GROUPS, 1e-5);
    return act ? this.g.op('Relu', [y]) : y;
  }

  /** ResNetV2 Bottleneck (preact=False): downsample shortcut on a stage's first block, stride on conv2. */
  bottleneck(x: Value, p: string, stride: number): Value {
    const shortcut = this.w.has(`${p}.downsample.conv.weight`) ? this.gn(this.stdConv(x, `${p}.downsample.conv`, stride), `${p}.downsample.norm`, false) : x;
    let h = this.gn(this.stdConv(x, `${p}.conv1`), `${p}.norm1`);
    h = this.gn(this.stdConv(h, `${p}.conv2`, stride), `${p}.norm2`);
    h = this.gn(this.stdConv(h, `${p}.conv3`), `${p}.norm3`, false);
    return this.g.op('Relu', [this.g.op('Add', [h, shortcut])]);
  }

  /** A pre-norm ViT block (timm Block): x + attn(norm1(x)), then x + mlp(norm2(x)). x is [1, S, D]. */
  vitBlock(x: Value, p: string): Value {
    const g = this.g, n = this.n;
    const qkv = linear(n, layerNorm(n, x, `${p}.norm1`, 1e-6), `${p}.attn.qkv`, false);
    const [q, k, v] = g.opN('Split', [qkv], 3, { axis: -1, num_outputs: 3 }) as [Value, Value, Value];
    const h = g.op('Add', [x, linear(n, mha(g, q, k, v, HEADS), `${p}.attn.proj`, false)]);
    const mlp = linear(n, gelu(g, linear(n, layerNorm(n, h, `${p}.norm2`, 1e-6), `${p}.mlp.fc1`, false)), `${p}.mlp.fc2`, false);
    return g.op('Add', [h, mlp]);
  }

  /** ProjectReadout + Transpose + Unflatten: [1, 1+N, D] tokens → [1, D, gh, gw] (the grid of `grid`). */
  reassemble(tokens: Value, p: string, grid: Value): Value {
    const g = this.g;
    const patches = g.op('Slice', [tokens, g.i64([1]), g.i64([Number.MAX_SAFE_INTEGER]), g.i64([1])]);
    const readout = g.op('Expand', [g.op('Slice', [tokens, g.i64([0]), g.i64([1]), g.i64([1])]), g.op('Shape', [patches])]);
    const projected = gelu(g, linear(this.n, g.op('Concat', [patches, readout], { axis: -1 }), `${p}.0.project.0`, false));
    return fromTokens(g, projected, grid);
  }

  /** Bilinear x2 with align_corners=True (DPT's Interpolate and fusion blocks). */
  up2(x: Value): Value {
    return this.g.op('Resize', [x, '', this.g.f32([1, 1, 2, 2])], { mode: 'linear', coordinate_transformation_mode: 'align_corners' });
  }

  /** ResidualConvUnit_custom (no batch norm): conv2(relu(conv1(relu(x)))) + x. */
  residual(x: Value, p: string): Value {
    const g = this.g;
    const h = conv(this.n, g.op('Relu', [x]), `${p}.conv1`, { pad: 1 });
    return g.op('Add', [conv(this.n, g.op('Relu', [h]), `${p}.conv2`, { pad: 1 }), x]);
  }

  /** FeatureFusionBlock_custom: (x + rcu1(skip)) → rcu2 → x2 upsampling → 1x1 out_conv. */
  fusion(p: string, x: Value, skip?: Value): Value {
    const sum = skip ? this.g.op('Add', [x, this.residual(skip, `${p}.resConfUnit1`)]) : x;
    return conv(this.n, this.up2(this.residual(sum, `${p}.resConfUnit2`)), `${p}.out_conv`, { pad: 0 });
  }
}

/** Builds MiDaS DPT-Hybrid; throws naming a missing or unused checkpoint key (a foreign file). */
export function buildMidasDpt(src: WeightSource, label = 'dpt_hybrid'): GraphBuilder {
  const stemKey = `${RESNET}.stem.conv.weight`;
  const stem = src.keys().find((k) => k.endsWith(stemKey));
  if (!stem) throw new Error(`${label}: missing weight ${stemKey} (not a MiDaS DPT-Hybrid checkpoint)`);
  const prefix = stem.slice(0, stem.length - stemKey.length);
  const g = new GraphBuilder('midas_dpt_hybrid');
  const w = new WeightReader(src, label, (k) => prefix + k);
  const n = new Net(g, w, false);
  const b = new Builder(n, label);
  const x = g.input('x', 'float32', [1, 3, 'h', 'w']);

  // ResNetV2 stem and stages; stages 0 and 1 are DPT's layer_1 and layer_2
  let h = g.op('MaxPool', [b.gn(b.stdConv(x, `${RESNET}.stem.conv`, 2), `${RESNET}.stem.norm`)], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' });
  const stages: Value[] = [];
  for (let s = 0; w.has(`${RESNET}.stages.${s}.blocks.0.conv1.weight`); s++) {
    for (let i = 0; w.has(`${RESNET}.stages.${s}.blocks.${i}.conv1.weight`); i++) h = b.bottleneck(h, `${RESNET}.stages.${s}.blocks.${i}`, s > 0 && i === 0 ? 2 : 1);
    stages.push(h);
  }
  if (stages.length !== 3) throw new Error(`${label}: ${stages.length} ResNet stages, expected 3 (R50+ViT-B/16 hybrid)`);

  // patch embedding (1x1 proj of the H/16 features), class token, position embeddings resized to the grid
  const grid = conv(n, stages[2]!, `${VIT}.patch_embed.proj`, { pad: 0 });
  const dim = w.shape(`${VIT}.patch_embed.proj.weight`)[0]!;
  if (dim % HEADS !== 0) throw new Error(`${label}: ViT width ${dim} is not a multiple of its ${HEADS} heads`);
  let t = g.op('Concat', [w.param(g, `${VIT}.cls_token`, [1, 1, dim]), toTokens(g, grid, dim)], { axis: 1 });
  const posShape = w.shape(`${VIT}.pos_embed`);
  const side = Math.round(Math.sqrt(posShape[1]! - 1));
  if (posShape.length !== 3 || posShape[2] !== dim || side * side !== posShape[1]! - 1) {
    throw new Error(`${label}: weight ${VIT}.pos_embed has shape [${posShape}], expected [1, 1 + n*n, ${dim}]`);
  }
  const pos = w.param(g, `${VIT}.pos_embed`);
  const posGrid = g.op('Transpose', [g.op('Reshape', [g.op('Slice', [pos, g.i64([1]), g.i64([1 + side * side]), g.i64([1])]), g.i64([1, side, side, dim])])], { perm: [0, 3, 1, 2] });
  // the grid is the input's size / 16 (forward_flex: h // patch_size); taken from the input, whose rank ONNX knows
  const gridSize = g.op('Concat', [g.i64([1, dim]), g.op('Div', [g.op('Shape', [x], { start: 2 }), g.i64([16])])], { axis: 0 });
  const resized = g.op('Resize', [posGrid, '', '', gridSize], { mode: 'linear', coordinate_transformation_mode: 'half_pixel' });
  const posTokens = g.op('Concat', [g.op('Slice', [pos, g.i64([0]), g.i64([1]), g.i64([1])]), toTokens(g, resized, dim)], { axis: 1 });
  t = g.op('Add', [t, posTokens]);

  const hooked: Value[] = [];
  let depth = 0;
  for (; w.has(`${VIT}.blocks.${depth}.norm1.weight`); depth++) {
    t = b.vitBlock(t, `${VIT}.blocks.${depth}`);
    if ((HOOKS as readonly number[]).includes(depth)) hooked.push(t);
  }
  if (depth !== 12) throw new Error(`${label}: ${depth} ViT blocks, expected 12 (ViT-B/16)`);

  const layer1 = stages[0]!, layer2 = stages[1]!;
  const layer3 = conv(n, b.reassemble(hooked[0]!, 'pretrained.act_postprocess3', grid), 'pretrained.act_postprocess3.3', { pad: 0 });
  const layer4 = conv(n, conv(n, b.reassemble(hooked[1]!, 'pretrained.act_postprocess4', grid), 'pretrained.act_postprocess4.3', { pad: 0 }), 'pretrained.act_postprocess4.4', { stride: 2, pad: 1 });

  const rn = (v: Value, k: number) => conv(n, v, `scratch.layer${k}_rn`, { pad: 1 });
  const path4 = b.fusion('scratch.refinenet4', rn(layer4, 4));
  const path3 = b.fusion('scratch.refinenet3', path4, rn(layer3, 3));
  const path2 = b.fusion('scratch.refinenet2', path3, rn(layer2, 2));
  const path1 = b.fusion('scratch.refinenet1', path2, rn(layer1, 1));
  let d = b.up2(conv(n, path1, 'scratch.output_conv.0', { pad: 1 }));
  d = g.op('Relu', [conv(n, d, 'scratch.output_conv.2', { pad: 1 })]);
  d = g.op('Relu', [conv(n, d, 'scratch.output_conv.4', { pad: 0 })]);
  g.output(g.op('Squeeze', [d, g.i64([1])]), 'depth', 'float32', [1, 'h', 'w']);
  w.assertAllUsed((k) => !k.startsWith(prefix) || UNREAD.some((u) => k.startsWith(prefix + u)));
  return g;
}
