// The lineart annotator's generator (carolineec/informative-drawings, as controlnet_aux 0.0.10 lineart/__init__.py
// Generator(3, 1, 3)) built from its original checkpoint (sk_model.pth, or sk_model2.pth for the coarse
// variant): weight names are the checkpoint's keys. Input [1,3,H,W] RGB 0..1, output [1,1,H,W] after the sigmoid
// (line darkness 0..1), the contract of dense.ts lineart. InstanceNorm2d has no affine weights (torch's default).
import { float, GraphBuilder, type Value } from '../../onnx/graph.ts';
import { Net, conv } from '../layers.ts';
import { WeightReader } from '../weight-reader.ts';
import type { WeightSource } from '../../weights/types.ts';

function instanceNorm(g: GraphBuilder, x: Value, c: number): Value {
  return g.op('InstanceNormalization', [x, g.f32(new Float32Array(c).fill(1)), g.f32(new Float32Array(c))], { epsilon: float(1e-5) });
}

function reflectPad(g: GraphBuilder, x: Value, p: number): Value {
  return g.op('Pad', [x, g.i64([0, 0, p, p, 0, 0, p, p])], { mode: 'reflect' });
}

/** Builds the lineart generator; the residual block count is read from the checkpoint (3 in sk_model). */
export function buildLineart(src: WeightSource, label = 'lineart'): GraphBuilder {
  const g = new GraphBuilder('lineart');
  const w = new WeightReader(src, label);
  const n = new Net(g, w, false);
  const c = (x: Value, prefix: string, opts: { stride?: number; pad?: number } = {}) => conv(n, x, prefix, { ...opts, lora: false });
  const channels = (prefix: string) => w.shape(`${prefix}.weight`)[0]!;
  let h: Value = g.input('x', 'float32', [1, 3, 'h', 'w']);
  h = g.op('Relu', [instanceNorm(g, c(reflectPad(g, h, 3), 'model0.1', { pad: 0 }), channels('model0.1'))]);
  for (const i of [0, 3]) h = g.op('Relu', [instanceNorm(g, c(h, `model1.${i}`, { stride: 2, pad: 1 }), channels(`model1.${i}`))]);
  for (let b = 0; w.has(`model2.${b}.conv_block.1.weight`); b++) {
    const p = `model2.${b}.conv_block`;
    let r = g.op('Relu', [instanceNorm(g, c(reflectPad(g, h, 1), `${p}.1`, { pad: 0 }), channels(`${p}.1`))]);
    r = instanceNorm(g, c(reflectPad(g, r, 1), `${p}.5`, { pad: 0 }), channels(`${p}.5`));
    h = g.op('Add', [h, r]);
  }
  for (const i of [0, 3]) {
    // ConvTranspose2d(k 3, stride 2, padding 1, output_padding 1): weight [in, out, 3, 3] as ONNX wants it
    const name = `model3.${i}`;
    const [, out] = w.shape(`${name}.weight`) as [number, number];
    const y = g.op('ConvTranspose', [h, w.param(g, `${name}.weight`), w.param(g, `${name}.bias`, [out])], {
      kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1],
    });
    h = g.op('Relu', [instanceNorm(g, y, out)]);
  }
  h = g.op('Sigmoid', [c(reflectPad(g, h, 3), 'model4.1', { pad: 0 })]);
  g.output(h, 'line', 'float32');
  w.assertAllUsed();
  return g;
}
