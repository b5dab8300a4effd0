// PiDiNet (hellozhuo/pidinet; the softedge annotator: controlnet_aux 0.0.10 pidi/model.py pidinet(), i.e.
// PiDiNet(60, config 'carv4', dil=24, sa=True)) built from its original checkpoint (table5_pidinet.pth, whose
// keys carry DataParallel's "module." prefix inside "state_dict"): weight names are the checkpoint's keys.
// The pixel-difference convolutions are rewritten into the equivalent plain kernels when the weights are
// written (the paper's own conversion, pidi/model.py createConvFunc / PDCBlock_converted):
//   cd (central): W with sum(W) subtracted at the centre tap; ad (angular): W - W[3,0,1,6,4,2,7,8,5];
//   rd (radial): a 5x5 kernel, W[1:] on the outer ring, -W[1:] on the inner ring, 0 at the centre.
// Input [1,3,H,W] BGR 0..1; outputs side0..side3 and fused [1,1,H,W], all after the sigmoid (dense.ts softedge
// reads the last).
import { GraphBuilder, type Value } from '../../onnx/graph.ts';
import { WeightReader } from '../weight-reader.ts';
import type { WeightSource } from '../../weights/types.ts';

type Pdc = 'cv' | 'cd' | 'ad' | 'rd';

/** The 'carv4' configuration: init block then blocks 1_1 .. 4_4. */
const CARV4: Pdc[] = ['cd', 'ad', 'rd', 'cv', 'cd', 'ad', 'rd', 'cv', 'cd', 'ad', 'rd', 'cv', 'cd', 'ad', 'rd', 'cv'];
const AD_PERM = [3, 0, 1, 6, 4, 2, 7, 8, 5];
const RD_OUTER = [0, 2, 4, 10, 14, 20, 22, 24];
const RD_INNER = [6, 7, 8, 11, 13, 16, 17, 18];

/** The plain kernel equivalent to pixel-difference convolution `pdc` with 3x3 weights w [O, I, 3, 3]. */
export function pdcKernel(pdc: Pdc, w: Float32Array, shape: number[]): Float32Array {
  const [o, i] = shape as [number, number];
  const n = o * i;
  if (pdc === 'cv') return w;
  if (pdc === 'cd') {
    const out = Float32Array.from(w);
    for (let k = 0; k < n; k++) {
      let sum = 0;
      for (let t = 0; t < 9; t++) sum += w[k * 9 + t]!;
      out[k * 9 + 4] = Math.fround(out[k * 9 + 4]! - Math.fround(sum));
    }
    return out;
  }
  if (pdc === 'ad') {
    const out = new Float32Array(w.length);
    for (let k = 0; k < n; k++) for (let t = 0; t < 9; t++) out[k * 9 + t] = w[k * 9 + t]! - w[k * 9 + AD_PERM[t]!]!;
    return out;
  }
  const out = new Float32Array(n * 25);
  for (let k = 0; k < n; k++) {
    for (let t = 0; t < 8; t++) {
      out[k * 25 + RD_OUTER[t]!] = w[k * 9 + 1 + t]!;
      out[k * 25 + RD_INNER[t]!] = -w[k * 9 + 1 + t]!;
    }
  }
  return out;
}

class Builder {
  constructor(readonly g: GraphBuilder, readonly w: WeightReader) {}

  conv(x: Value, prefix: string, o: { pad?: number; dilation?: number; group?: number } = {}): Value {
    const name = `${prefix}.weight`;
    const [out, , kh, kw] = this.w.shape(name) as [number, number, number, number];
    const d = o.dilation ?? 1, p = o.pad ?? ((kh - 1) / 2) * d;
    const inputs = [x, this.w.param(this.g, name)];
    if (this.w.has(`${prefix}.bias`)) inputs.push(this.w.param(this.g, `${prefix}.bias`, [out]));
    return this.g.op('Conv', inputs, { kernel_shape: [kh, kw], pads: [p, p, p, p], dilations: [d, d], group: o.group ?? 1 });
  }

  /** A pixel-difference convolution (3x3, padding 1; rd: the 5x5 equivalent, padding 2), no bias. */
  pdcConv(x: Value, prefix: string, pdc: Pdc, group: number): Value {
    const name = `${prefix}.weight`;
    const shape = this.w.shape(name) as [number, number, number, number];
    const k = pdc === 'rd' ? 5 : 3;
    const weight = this.w.paramWith(this.g, name, [shape[0], shape[1], k, k], (w, s) => pdcKernel(pdc, w, s));
    const p = (k - 1) / 2;
    return this.g.op('Conv', [x, weight], { kernel_shape: [k, k], pads: [p, p, p, p], group });
  }

  block(x: Value, prefix: string, pdc: Pdc, stride: number): Value {
    if (stride > 1) x = this.g.op('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2] });
    const c = this.w.shape(`${prefix}.conv1.weight`)[0]!;
    let y = this.g.op('Relu', [this.pdcConv(x, `${prefix}.conv1`, pdc, c)]);
    y = this.conv(y, `${prefix}.conv2`, { pad: 0 });
    if (stride > 1) x = this.conv(x, `${prefix}.shortcut`, { pad: 0 });
    return this.g.op('Add', [y, x]);
  }

  /** CDCM: ReLU, 1x1 conv, then the sum of four 3x3 convs dilated 5, 7, 9, 11. */
  cdcm(x: Value, prefix: string): Value {
    const h = this.conv(this.g.op('Relu', [x]), `${prefix}.conv1`, { pad: 0 });
    const parts = [5, 7, 9, 11].map((d, i) => this.conv(h, `${prefix}.conv2_${i + 1}`, { dilation: d }));
    return parts.reduce((a, b) => this.g.op('Add', [a, b]));
  }

  /** CSAM: x * sigmoid(conv3x3(conv1x1(relu(x)))). */
  csam(x: Value, prefix: string): Value {
    const y = this.conv(this.conv(this.g.op('Relu', [x]), `${prefix}.conv1`, { pad: 0 }), `${prefix}.conv2`, { pad: 1 });
    return this.g.op('Mul', [x, this.g.op('Sigmoid', [y])]);
  }
}

/** Builds PiDiNet (carv4, dil 24, sa); throws naming a missing or unused checkpoint key (a foreign file). */
export function buildPidinet(src: WeightSource, label = 'pidinet'): GraphBuilder {
  const g = new GraphBuilder('pidinet');
  // table5_pidinet.pth holds DataParallel names ("module.init_block.weight")
  const prefixed = src.info('module.init_block.weight') !== undefined;
  const w = new WeightReader(src, label, prefixed ? (n) => `module.${n}` : undefined);
  const b = new Builder(g, w);
  const x = g.input('x', 'float32', [1, 3, 'h', 'w']);
  let h = b.pdcConv(x, 'init_block', CARV4[0]!, 1);
  const stages: Value[] = [];
  let layer = 1;
  for (const [s, count] of [[1, 3], [2, 4], [3, 4], [4, 4]] as const) {
    for (let i = 1; i <= count; i++, layer++) h = b.block(h, `block${s}_${i}`, CARV4[layer]!, i === 1 && s > 1 ? 2 : 1);
    stages.push(h);
  }
  // F.interpolate(e, (H, W), bilinear, align_corners=False): the input's size
  const hw = g.op('Slice', [g.op('Shape', [x]), g.i64([2]), g.i64([4])]);
  const sizes = g.op('Concat', [g.i64([1, 1]), hw], { axis: 0 });
  const edges = stages.map((xi, i) => {
    const e = b.conv(b.csam(b.cdcm(xi, `dilations.${i}`), `attentions.${i}`), `conv_reduces.${i}.conv`, { pad: 0 });
    return g.op('Resize', [e, '', '', sizes], { mode: 'linear', coordinate_transformation_mode: 'half_pixel' });
  });
  const fused = b.conv(g.op('Concat', edges, { axis: 1 }), 'classifier', { pad: 0 });
  [...edges, fused].forEach((e, i) => g.output(g.op('Sigmoid', [e]), i < 4 ? `side${i}` : 'fused', 'float32'));
  w.assertAllUsed();
  return g;
}
