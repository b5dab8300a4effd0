// NormalBae (baegwangbin/surface_normal_uncertainty; the normal annotator: controlnet_aux 0.0.10 normalbae NNET with
// architecture 'BN') built from its original checkpoint (scannet.pt, whose "model" dict may carry "module."
// prefixes; other entries of the file are not read): weight names are the checkpoint's keys. The encoder is geffnet's tf_efficientnet_b5_ap (TF "SAME"
// padding, BatchNorm eps 1e-3, SiLU, squeeze-excite); the decoder runs its test mode (every pixel refined, no
// sampling). Input [1,3,H,W] ImageNet-normalized RGB; output [1,4,H,W] (unit normal xyz and kappa), the
// contract of dense.ts normal. The encoder's final bn2 is in the checkpoint but feeds nothing the decoder reads.
import { float, GraphBuilder, type Attr, type Value } from '../../onnx/graph.ts';
import { WeightReader } from '../weight-reader.ts';
import type { WeightSource } from '../../weights/types.ts';

const ENC = 'encoder.original_model';
/** Stride of each EfficientNet stage's first block (the B5 architecture; strides are not in the checkpoint). */
const STAGE_STRIDES = [1, 2, 2, 2, 1, 2, 1];

class Builder {
  constructor(readonly g: GraphBuilder, readonly w: WeightReader) {}

  /** Conv; `same` uses TF SAME padding (geffnet's Conv2dSame / static same padding), else symmetric `pad`. */
  conv(x: Value, prefix: string, o: { stride?: number; same?: boolean; pad?: number; group?: number } = {}): Value {
    const name = `${prefix}.weight`;
    const shape = this.w.shape(name);
    const [out, , kh, kw] = shape.length === 3 ? [shape[0]!, shape[1]!, 1, 1] : (shape as [number, number, number, number]);
    // Conv1d(kernel 1) weights [O, I, 1] run as 1x1 Conv2d weights [O, I, 1, 1]
    const weight = shape.length === 3 ? this.w.paramWith(this.g, name, [out, shape[1]!, 1, 1], (v) => v) : this.w.param(this.g, name);
    const inputs = [x, weight];
    if (this.w.has(`${prefix}.bias`)) inputs.push(this.w.param(this.g, `${prefix}.bias`, [out]));
    const s = o.stride ?? 1;
    const attrs: Record<string, Attr> = { kernel_shape: [kh, kw], strides: [s, s], group: o.group ?? 1 };
    if (o.same && kh > 1) attrs.auto_pad = 'SAME_UPPER';
    else if (kh > 1) {
      const ph = o.pad ?? (kh - 1) / 2, pw = o.pad ?? (kw - 1) / 2;
      attrs.pads = [ph, pw, ph, pw];
    }
    return this.g.op('Conv', inputs, attrs);
  }

  bn(x: Value, prefix: string, eps: number): Value {
    const c = this.w.shape(`${prefix}.weight`)[0]!;
    const p = (k: string) => this.w.param(this.g, `${prefix}.${k}`, [c]);
    return this.g.op('BatchNormalization', [x, p('weight'), p('bias'), p('running_mean'), p('running_var')], { epsilon: float(eps) });
  }

  silu(x: Value): Value {
    return this.g.op('Mul', [x, this.g.op('Sigmoid', [x])]);
  }

  se(x: Value, prefix: string): Value {
    const pooled = this.g.op('ReduceMean', [x, this.g.i64([2, 3])], { keepdims: 1 });
    const gate = this.conv(this.silu(this.conv(pooled, `${prefix}.conv_reduce`)), `${prefix}.conv_expand`);
    return this.g.op('Mul', [x, this.g.op('Sigmoid', [gate])]);
  }

  /** geffnet DepthwiseSeparableConv (stage 0) or InvertedResidual (stages 1-6), residual when shapes allow. */
  block(x: Value, p: string, stride: number): Value {
    const dwShape = this.w.shape(`${p}.conv_dw.weight`);
    const c = dwShape[0]!;
    let h: Value;
    let out: number;
    if (this.w.has(`${p}.conv_pwl.weight`)) {
      h = this.silu(this.bn(this.conv(x, `${p}.conv_pw`), `${p}.bn1`, 1e-3));
      h = this.silu(this.bn(this.conv(h, `${p}.conv_dw`, { stride, same: true, group: c }), `${p}.bn2`, 1e-3));
      h = this.se(h, `${p}.se`);
      out = this.w.shape(`${p}.conv_pwl.weight`)[0]!;
      h = this.bn(this.conv(h, `${p}.conv_pwl`), `${p}.bn3`, 1e-3);
      const inp = this.w.shape(`${p}.conv_pw.weight`)[1]!;
      return stride === 1 && inp === out ? this.g.op('Add', [h, x]) : h;
    }
    h = this.silu(this.bn(this.conv(x, `${p}.conv_dw`, { stride, same: true, group: c }), `${p}.bn1`, 1e-3));
    h = this.se(h, `${p}.se`);
    out = this.w.shape(`${p}.conv_pw.weight`)[0]!;
    h = this.bn(this.conv(h, `${p}.conv_pw`), `${p}.bn2`, 1e-3);
    return stride === 1 && c === out ? this.g.op('Add', [h, x]) : h;
  }

  /** Bilinear resize with align_corners=True to `sizes` ([N, C, H, W] as int64). */
  resizeTo(x: Value, sizes: Value): Value {
    return this.g.op('Resize', [x, '', '', sizes], { mode: 'linear', coordinate_transformation_mode: 'align_corners' });
  }

  up2(x: Value): Value {
    return this.g.op('Resize', [x, '', this.g.f32([1, 1, 2, 2])], { mode: 'linear', coordinate_transformation_mode: 'align_corners' });
  }

  upSampleBN(x: Value, skip: Value, p: string): Value {
    const nc = this.g.op('Slice', [this.g.op('Shape', [x]), this.g.i64([0]), this.g.i64([2])]);
    const hw = this.g.op('Slice', [this.g.op('Shape', [skip]), this.g.i64([2]), this.g.i64([4])]);
    const f = this.g.op('Concat', [this.resizeTo(x, this.g.op('Concat', [nc, hw], { axis: 0 })), skip], { axis: 1 });
    const leaky = (v: Value) => this.g.op('LeakyRelu', [v], { alpha: float(0.01) });
    const h = leaky(this.bn(this.conv(f, `${p}._net.0`), `${p}._net.1`, 1e-5));
    return leaky(this.bn(this.conv(h, `${p}._net.3`), `${p}._net.4`, 1e-5));
  }

  /** norm_normalize: xyz divided by their norm (+1e-10), kappa = elu(kappa) + 1.01. */
  normNormalize(x: Value): Value {
    const g = this.g;
    const xyz = g.op('Slice', [x, g.i64([0]), g.i64([3]), g.i64([1])]);
    const kappa = g.op('Slice', [x, g.i64([3]), g.i64([4]), g.i64([1])]);
    const norm = g.op('Add', [g.op('Sqrt', [g.op('ReduceSum', [g.op('Mul', [xyz, xyz]), g.i64([1])], { keepdims: 1 })]), g.scalar(1e-10)]);
    return g.op('Concat', [g.op('Div', [xyz, norm]), g.op('Add', [g.op('Elu', [kappa], { alpha: float(1) }), g.scalar(1.01)])], { axis: 1 });
  }

  /** The test-mode refinement head: 1x1 convs with ReLU between, then norm_normalize. */
  head(x: Value, p: string): Value {
    let h = x;
    for (const i of [0, 2, 4]) h = this.g.op('Relu', [this.conv(h, `${p}.${i}`)]);
    return this.normNormalize(this.conv(h, `${p}.6`));
  }
}

/** Builds NormalBae; throws naming a missing or unused checkpoint key (a foreign file). */
export function buildNormalBae(src: WeightSource, label = 'normalbae'): GraphBuilder {
  const g = new GraphBuilder('normalbae');
  // scannet.pt keeps the weights under "model", with DataParallel's "module." in front: find the prefix
  const stem = src.keys().find((k) => k.endsWith(`${ENC}.conv_stem.weight`));
  if (!stem) throw new Error(`${label}: missing weight ${ENC}.conv_stem.weight (not a NormalBae checkpoint)`);
  const prefix = stem.slice(0, stem.length - `${ENC}.conv_stem.weight`.length);
  const w = new WeightReader(src, label, (n) => prefix + n);
  const b = new Builder(g, w);
  const x = g.input('x', 'float32', [1, 3, 'h', 'w']);
  let h = b.silu(b.bn(b.conv(x, `${ENC}.conv_stem`, { stride: 2, same: true }), `${ENC}.bn1`, 1e-3));
  const stages: Value[] = [];
  for (let s = 0; w.has(`${ENC}.blocks.${s}.0.conv_dw.weight`); s++) {
    for (let i = 0; w.has(`${ENC}.blocks.${s}.${i}.conv_dw.weight`); i++) h = b.block(h, `${ENC}.blocks.${s}.${i}`, i === 0 ? STAGE_STRIDES[s]! : 1);
    stages.push(h);
  }
  if (stages.length !== 7) throw new Error(`${label}: ${stages.length} EfficientNet stages, expected 7`);
  const head = b.conv(h, `${ENC}.conv_head`);
  // features[4], [5], [6], [8], [11]: stages 0, 1, 2, 4 and conv_head
  const [b0, b1, b2, , b4] = stages as [Value, Value, Value, Value, Value];
  const d0 = b.conv(head, 'decoder.conv2');
  const d1 = b.upSampleBN(d0, b4, 'decoder.up1');
  const d2 = b.upSampleBN(d1, b2, 'decoder.up2');
  const d3 = b.upSampleBN(d2, b1, 'decoder.up3');
  const d4 = b.upSampleBN(d3, b0, 'decoder.up4');
  const res8 = b.normNormalize(b.conv(d2, 'decoder.out_conv_res8'));
  const res4 = b.head(g.op('Concat', [b.up2(d2), b.up2(res8)], { axis: 1 }), 'decoder.out_conv_res4');
  const res2 = b.head(g.op('Concat', [b.up2(d3), b.up2(res4)], { axis: 1 }), 'decoder.out_conv_res2');
  const res1 = b.head(g.op('Concat', [b.up2(d4), b.up2(res2)], { axis: 1 }), 'decoder.out_conv_res1');
  g.output(res1, 'normal', 'float32');
  // the encoder's bn2 feeds nothing the decoder reads; entries outside the model's prefix (training state) are not weights
  w.assertAllUsed((k) => k.endsWith('.num_batches_tracked') || k.startsWith(`${prefix}${ENC}.bn2.`) || !k.startsWith(prefix));
  return g;
}
