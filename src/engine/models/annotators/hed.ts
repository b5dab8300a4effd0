// ControlNetHED_Apache2 (lllyasviel/ControlNet-v1-1-nightly annotator/hed, as controlnet_aux 0.0.10 hed/__init__.py)
// built from its original checkpoint (ControlNetHED.pth): weight names are the checkpoint's keys.
// Input [1,3,H,W] RGB 0..255 (the network subtracts its own `norm`), outputs the five side projections
// p0..p4 [1,1,H/2^k,W/2^k] before the sigmoid, the contract of dense.ts hedMap.
import { GraphBuilder, type Value } from '../../onnx/graph.ts';
import { Net, conv } from '../layers.ts';
import { WeightReader } from '../weight-reader.ts';
import type { WeightSource } from '../../weights/types.ts';

/** Convolutions per DoubleConvBlock (block1..block5). */
const LAYERS = [2, 2, 3, 3, 3];

/** Builds the HED graph; throws naming a missing or unused checkpoint key (a foreign file). */
export function buildHed(src: WeightSource, label = 'ControlNetHED'): GraphBuilder {
  const g = new GraphBuilder('hed');
  const w = new WeightReader(src, label);
  const n = new Net(g, w, false);
  const x = g.input('x', 'float32', [1, 3, 'h', 'w']);
  let h: Value = g.op('Sub', [x, w.param(g, 'norm', [1, 3, 1, 1])]);
  LAYERS.forEach((count, b) => {
    const block = `block${b + 1}`;
    if (b > 0) h = g.op('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] });
    for (let i = 0; i < count; i++) h = g.op('Relu', [conv(n, h, `${block}.convs.${i}`, { pad: 1, lora: false })]);
    g.output(conv(n, h, `${block}.projection`, { pad: 0, lora: false }), `p${b}`, 'float32');
  });
  w.assertAllUsed();
  return g;
}
