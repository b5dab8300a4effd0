// M-LSD large (navervision/mlsd, as controlnet_aux 0.0.10 mlsd/models/mbv2_mlsd_large.py MobileV2_MLSD_Large)
// built from its original checkpoint (mlsd_large_512_fp32.pth): weight names are the checkpoint's keys.
// Input [1,4,H,W] (RGB and a ones channel, scaled to [-1,1]; H, W multiples of 32), output tpMap
// [1,9,H/2,W/2] (x[:, 7:] of the 16-channel head), the contract of annotators/neural/mlsd.ts.
// BatchNorm layers run in inference mode (running statistics, eps 1e-5); num_batches_tracked is not used.
import { float, GraphBuilder, type Value } from '../../onnx/graph.ts';
import { WeightReader } from '../weight-reader.ts';
import type { WeightSource } from '../../weights/types.ts';

/** MobileNetV2's inverted residual settings in the M-LSD backbone: expansion t, channels c, repeats n, stride s. */
const SETTINGS: [number, number, number, number][] = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1]];
/** Backbone features whose outputs feed the decoder (fpn_selected). */
const FPN = [1, 3, 6, 10, 13];

class Builder {
  constructor(readonly g: GraphBuilder, readonly w: WeightReader) {}

  conv(x: Value, prefix: string, o: { stride?: number; pad?: number; group?: number; dilation?: number } = {}): Value {
    const name = `${prefix}.weight`;
    const [out, , kh, kw] = this.w.shape(name) as [number, number, number, number];
    const d = o.dilation ?? 1, p = o.pad ?? ((kh - 1) / 2) * d;
    const inputs = [x, this.w.param(this.g, name)];
    if (this.w.has(`${prefix}.bias`)) inputs.push(this.w.param(this.g, `${prefix}.bias`, [out]));
    return this.g.op('Conv', inputs, { kernel_shape: [kh, kw], strides: [o.stride ?? 1, o.stride ?? 1], pads: [p, p, p, p], dilations: [d, d], group: o.group ?? 1 });
  }

  bn(x: Value, prefix: string): Value {
    const c = this.w.shape(`${prefix}.weight`)[0]!;
    const p = (k: string) => this.w.param(this.g, `${prefix}.${k}`, [c]);
    return this.g.op('BatchNormalization', [x, p('weight'), p('bias'), p('running_mean'), p('running_var')], { epsilon: float(1e-5) });
  }

  relu6(x: Value): Value {
    return this.g.op('Clip', [x, this.g.scalar(0), this.g.scalar(6)]);
  }

  relu(x: Value): Value {
    return this.g.op('Relu', [x]);
  }

  /** ConvBNReLU: stride 2 pads right and bottom by one (F.pad (0,1,0,1)) and convolves unpadded. */
  convBnRelu(x: Value, prefix: string, stride: number, group = 1): Value {
    if (stride === 2) x = this.g.op('Pad', [x, this.g.i64([0, 0, 0, 0, 0, 0, 1, 1])], { mode: 'constant' });
    const y = this.conv(x, `${prefix}.0`, { stride, pad: stride === 2 ? 0 : undefined, group });
    return this.relu6(this.bn(y, `${prefix}.1`));
  }

  invertedResidual(x: Value, prefix: string, inp: number, oup: number, stride: number, t: number): Value {
    let h = x, i = 0;
    const hidden = Math.round(inp * t);
    if (t !== 1) h = this.convBnRelu(h, `${prefix}.conv.${i++}`, 1);
    h = this.convBnRelu(h, `${prefix}.conv.${i++}`, stride, hidden);
    h = this.bn(this.conv(h, `${prefix}.conv.${i++}`, { pad: 0 }), `${prefix}.conv.${i}`);
    return stride === 1 && inp === oup ? this.g.op('Add', [x, h]) : h;
  }

  blockA(a: Value, b: Value, prefix: string, upscale: boolean): Value {
    let bb = this.relu(this.bn(this.conv(b, `${prefix}.conv1.0`, { pad: 0 }), `${prefix}.conv1.1`));
    const aa = this.relu(this.bn(this.conv(a, `${prefix}.conv2.0`, { pad: 0 }), `${prefix}.conv2.1`));
    if (upscale) {
      // F.interpolate(scale_factor=2, bilinear, align_corners=True)
      bb = this.g.op('Resize', [bb, '', this.g.f32([1, 1, 2, 2])], { mode: 'linear', coordinate_transformation_mode: 'align_corners' });
    }
    return this.g.op('Concat', [aa, bb], { axis: 1 });
  }

  blockB(x: Value, prefix: string): Value {
    const h = this.g.op('Add', [this.relu(this.bn(this.conv(x, `${prefix}.conv1.0`), `${prefix}.conv1.1`)), x]);
    return this.relu(this.bn(this.conv(h, `${prefix}.conv2.0`), `${prefix}.conv2.1`));
  }

  blockC(x: Value, prefix: string): Value {
    let h = this.relu(this.bn(this.conv(x, `${prefix}.conv1.0`, { dilation: 5 }), `${prefix}.conv1.1`));
    h = this.relu(this.bn(this.conv(h, `${prefix}.conv2.0`), `${prefix}.conv2.1`));
    return this.conv(h, `${prefix}.conv3`, { pad: 0 });
  }
}

/** Builds M-LSD large; throws naming a missing or unused checkpoint key (a foreign file). */
export function buildMlsd(src: WeightSource, label = 'mlsd'): GraphBuilder {
  const g = new GraphBuilder('mlsd');
  const w = new WeightReader(src, label);
  const b = new Builder(g, w);
  let x: Value = g.input('x', 'float32', [1, 4, 'h', 'w']);
  x = b.convBnRelu(x, 'backbone.features.0', 2);
  const fpn: Value[] = [];
  let inp = 32, idx = 1;
  for (const [t, c, n, s] of SETTINGS) {
    for (let i = 0; i < n; i++, idx++) {
      x = b.invertedResidual(x, `backbone.features.${idx}`, inp, c, i === 0 ? s : 1, t);
      inp = c;
      if (FPN.includes(idx)) fpn.push(x);
    }
  }
  const [c1, c2, c3, c4, c5] = fpn as [Value, Value, Value, Value, Value];
  let h = b.blockA(c4, c5, 'block15', false);
  h = b.blockB(h, 'block16');
  h = b.blockB(b.blockA(c3, h, 'block17', true), 'block18');
  h = b.blockB(b.blockA(c2, h, 'block19', true), 'block20');
  h = b.blockB(b.blockA(c1, h, 'block21', true), 'block22');
  h = b.blockC(h, 'block23');
  g.output(g.op('Slice', [h, g.i64([7]), g.i64([16]), g.i64([1])]), 'tpmap', 'float32');
  w.assertAllUsed((k) => k.endsWith('.num_batches_tracked'));
  return g;
}
