// RRDBNet, the ESRGAN / Real-ESRGAN generator, as basicsr defines it (basicsr/archs/rrdbnet_arch.py, v1.4.2):
// conv_first → num_block RRDBs (3 residual dense blocks each, residual scale 0.2) → conv_body, added to the first
// features → two (nearest ×2 upsample, conv, LeakyReLU 0.2) stages → conv_hr, LeakyReLU → conv_last.
// Scale 2 and 1 models see the input pixel-unshuffled by 2 or 4 first (RealESRGAN_x2plus: 12 input channels).
// Weights keep basicsr's names (conv_first.weight, body.0.rdb1.conv1.weight, …), inside the "params_ema" or
// "params" dict of Real-ESRGAN's .pth files, or at the top level (.safetensors conversions).
import { GraphBuilder, type Value } from '../onnx/graph.ts';
import type { WeightSource } from '../weights/types.ts';
import { conv, Net } from './layers.ts';
import { WeightReader } from './weight-reader.ts';

export interface RrdbNetConfig {
  /** Output size / input size: 4 (x4plus), 2 (x2plus) or 1. */
  scale: 1 | 2 | 4;
  numInCh: number;
  numOutCh: number;
  numFeat: number;
  numBlock: number;
  numGrowCh: number;
  /** Where the weights sit in the file: "params_ema." (preferred, as Real-ESRGAN's inference), "params." or "". */
  prefix: string;
}

/** Thrown when a file is not an RRDBNet checkpoint (a user's file: a bad model file). */
export class NotRrdbNet extends Error {}

/** The config implied by a checkpoint's weight shapes (basicsr's constructor arguments). */
export function rrdbNetConfig(src: WeightSource): RrdbNetConfig {
  const keys = src.keys();
  const prefix = ['params_ema.', 'params.', ''].find((p) => keys.includes(`${p}conv_first.weight`));
  if (prefix === undefined) throw new NotRrdbNet('not an RRDBNet (ESRGAN / Real-ESRGAN) checkpoint: no conv_first.weight');
  const shape = (k: string): number[] => {
    const i = src.info(prefix + k);
    if (!i) throw new NotRrdbNet(`not an RRDBNet checkpoint: no ${k}`);
    return i.shape;
  };
  const [numFeat, inCh] = shape('conv_first.weight') as [number, number];
  const numOutCh = shape('conv_last.weight')[0]!;
  const numGrowCh = shape('body.0.rdb1.conv1.weight')[0]!;
  let numBlock = 0;
  while (src.info(`${prefix}body.${numBlock}.rdb1.conv1.weight`)) numBlock++;
  // basicsr multiplies num_in_ch by 4 (scale 2) or 16 (scale 1); an RGB model has 3, 12 or 48 channels
  const scale = inCh % 48 === 0 && inCh / 48 === numOutCh / 3 ? 1 : inCh % 12 === 0 && inCh / 12 === numOutCh / 3 ? 2 : 4;
  return { scale, numInCh: scale === 4 ? inCh : scale === 2 ? inCh / 4 : inCh / 16, numOutCh, numFeat, numBlock, numGrowCh, prefix };
}

/**
 * The graph: input "input" [N, numInCh, H, W] in 0–1 (H and W even for scale 2, multiples of 4 for scale 1),
 * output "output" [N, numOutCh, scale·H, scale·W] (not clamped). basicsr's pixel_unshuffle orders channels
 * c·s² + i·s + j; ONNX SpaceToDepth orders (i·s + j)·C + c, so conv_first's input channels are permuted to match.
 * Throws (naming the weight) when the file and the config disagree, and for weights the graph does not use.
 */
export function buildRrdbNet(src: WeightSource, c: RrdbNetConfig, label = 'RRDBNet'): GraphBuilder {
  const g = new GraphBuilder('rrdbnet');
  const w = new WeightReader(src, label, (n) => c.prefix + n);
  const n = new Net(g, w, false);
  const lrelu = (x: Value): Value => g.op('LeakyRelu', [x], { alpha: { f: 0.2 } });
  const scaled = (x: Value, s: number): Value => g.op('Mul', [x, g.scalar(s)]);
  let x = g.input('input', 'float32', ['batch', c.numInCh, 'height', 'width']);
  const unshuffle = c.scale === 2 ? 2 : c.scale === 1 ? 4 : 1;
  let feat: Value;
  if (unshuffle > 1) {
    x = g.op('SpaceToDepth', [x], { blocksize: unshuffle });
    const name = 'conv_first.weight';
    const [out, inF, kh, kw] = w.shape(name) as [number, number, number, number];
    const ss = unshuffle * unshuffle;
    const weight = w.paramMapped(g, name, (t) => {
      const p = new Float32Array(t.length);
      const k = kh * kw;
      for (let o = 0; o < out; o++) for (let ch = 0; ch < c.numInCh; ch++) for (let q = 0; q < ss; q++) {
        p.set(t.subarray((o * inF + ch * ss + q) * k, (o * inF + ch * ss + q + 1) * k), (o * inF + q * c.numInCh + ch) * k);
      }
      return p;
    });
    feat = g.op('Conv', [x, weight, w.param(g, 'conv_first.bias', [out])], { pads: [1, 1, 1, 1], kernel_shape: [kh, kw] });
  } else {
    feat = conv(n, x, 'conv_first');
  }
  const rdb = (h: Value, p: string): Value => {
    const xs = [h];
    for (let i = 1; i <= 4; i++) xs.push(lrelu(conv(n, g.op('Concat', [...xs], { axis: 1 }), `${p}.conv${i}`)));
    const x5 = conv(n, g.op('Concat', [...xs], { axis: 1 }), `${p}.conv5`);
    return g.op('Add', [scaled(x5, 0.2), h]);
  };
  let body = feat;
  for (let b = 0; b < c.numBlock; b++) {
    g.scope(`body.${b}`, () => {
      const input = body;
      let h = rdb(input, `body.${b}.rdb1`);
      h = rdb(h, `body.${b}.rdb2`);
      h = rdb(h, `body.${b}.rdb3`);
      body = g.op('Add', [scaled(h, 0.2), input]);
    });
  }
  feat = g.op('Add', [feat, conv(n, body, 'conv_body')]);
  const up = (h: Value): Value => g.op('Resize', [h, '', g.f32([1, 1, 2, 2])], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
  feat = lrelu(conv(n, up(feat), 'conv_up1'));
  feat = lrelu(conv(n, up(feat), 'conv_up2'));
  const out = conv(n, lrelu(conv(n, feat, 'conv_hr')), 'conv_last');
  g.output(out, 'output', 'float32');
  // the other of params / params_ema is not used (Real-ESRGAN files carry both)
  w.assertAllUsed((k) => !k.startsWith(c.prefix) || (c.prefix === '' && /^params(_ema)?\./.test(k)));
  return g;
}
