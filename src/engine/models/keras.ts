// A Keras functional model (as a TF.js layers model stores it) built as an ONNX graph by our builder, in NCHW.
// Each layer follows its Keras/TF.js definition: Conv2D and DepthwiseConv2D with TF's "same" padding (the extra
// row/column at the bottom/right: ONNX SAME_UPPER), BatchNormalization (inference: moving statistics), ReLU with
// max_value (ReLU6), ZeroPadding2D, Add, Concatenate, AveragePooling2D, GlobalAveragePooling2D, Flatten (of
// the NHWC order Keras flattens in), Dense, Dropout (identity at inference), UpSampling2D (nearest) and
// Activation. Layers outside that list throw, naming the layer.
import { float, GraphBuilder, type Attr, type Value } from '../onnx/graph.ts';
import type { KerasLayer, TfjsLayersModel, TfjsTensor } from '../weights/tfjs.ts';

/** Thrown for a model this builder cannot express (a user's file: reported as a bad model file). */
export class UnsupportedKerasModel extends Error {}

/** Keras NHWC axis of a rank-4 tensor → NCHW axis. */
const NCHW_AXIS = [0, 2, 3, 1];

interface Tensor {
  value: Value;
  rank: number;
}

function transposeConvKernel(w: TfjsTensor): { dims: number[]; data: Float32Array } {
  const [kh, kw, cin, cout] = w.shape as [number, number, number, number];
  const out = new Float32Array(w.data.length);
  for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) {
    out[((o * cin + i) * kh + y) * kw + x] = w.data[((y * kw + x) * cin + i) * cout + o]!;
  }
  return { dims: [cout, cin, kh, kw], data: out };
}

/** Depthwise kernel [kh, kw, cin, mult] → grouped-conv weight [cin*mult, 1, kh, kw] (output channel i*mult + m, as TF). */
function transposeDepthwiseKernel(w: TfjsTensor): { dims: number[]; data: Float32Array } {
  const [kh, kw, cin, mult] = w.shape as [number, number, number, number];
  const out = new Float32Array(w.data.length);
  for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < cin; i++) for (let m = 0; m < mult; m++) {
    out[((i * mult + m) * kh + y) * kw + x] = w.data[((y * kw + x) * cin + i) * mult + m]!;
  }
  return { dims: [cin * mult, 1, kh, kw], data: out };
}

export interface KerasGraphOptions {
  /** Graph input name; the input is NCHW float32 [N, C, H, W] (H and W may be symbolic). */
  input?: string;
  output?: string;
  /** Graph name (also the prefix of nothing: weights keep their TF.js names). */
  name?: string;
}

/**
 * Builds the graph of `m` with one NCHW input and one output. Throws UnsupportedKerasModel for layers, options or
 * topologies (several inputs/outputs, shared layers) it does not cover, and for missing weights.
 */
export function buildKerasGraph(m: TfjsLayersModel, opts: KerasGraphOptions = {}): GraphBuilder {
  const g = new GraphBuilder(opts.name ?? m.model.name ?? 'keras');
  const { layers, input_layers, output_layers } = m.model;
  if (input_layers.length !== 1 || output_layers.length !== 1) throw new UnsupportedKerasModel(`models with ${input_layers.length} inputs and ${output_layers.length} outputs are not supported (one each)`);
  const used = new Set<string>();
  const weight = (layer: string, name: string): TfjsTensor => {
    const w = m.weights.get(`${layer}/${name}`);
    if (!w) throw new UnsupportedKerasModel(`weight ${layer}/${name} is missing`);
    used.add(`${layer}/${name}`);
    return w;
  };
  const addWeight = (name: string, dims: number[], data: Float32Array): Value => g.weight(name, 'float32', dims, data);
  const plain = (layer: string, name: string): Value => {
    const w = weight(layer, name);
    return addWeight(`${layer}/${name}`, w.shape, w.data);
  };

  const values = new Map<string, Tensor>();
  const activation = (x: Tensor, a: string | undefined, layer: string): Tensor => {
    switch (a ?? 'linear') {
      case 'linear': return x;
      case 'relu': return { value: g.op('Relu', [x.value]), rank: x.rank };
      case 'relu6': return { value: g.op('Clip', [x.value, g.scalar(0), g.scalar(6)]), rank: x.rank };
      case 'sigmoid': return { value: g.op('Sigmoid', [x.value]), rank: x.rank };
      case 'tanh': return { value: g.op('Tanh', [x.value]), rank: x.rank };
      case 'softmax': return { value: g.op('Softmax', [x.value], { axis: x.rank === 4 ? 1 : -1 }), rank: x.rank };
      default: throw new UnsupportedKerasModel(`layer ${layer}: activation ${a} is not supported`);
    }
  };
  const axisOf = (axis: number, rank: number, layer: string): number => {
    const a = axis < 0 ? axis + rank : axis;
    if (rank === 4) return NCHW_AXIS[a]!;
    if (rank === 2) return a;
    throw new UnsupportedKerasModel(`layer ${layer}: rank ${rank} tensors are not supported`);
  };
  const convPads = (c: Record<string, any>, layer: string): Record<string, Attr> => {
    const [kh, kw] = c.kernel_size as number[];
    const [sh, sw] = (c.strides as number[] | undefined) ?? [1, 1];
    const [dh, dw] = (c.dilation_rate as number[] | undefined) ?? [1, 1];
    if (c.data_format && c.data_format !== 'channels_last') throw new UnsupportedKerasModel(`layer ${layer}: data_format ${c.data_format}`);
    const base = { kernel_shape: [kh!, kw!], strides: [sh!, sw!], dilations: [dh!, dw!] };
    if (c.padding === 'valid') return base;
    if (c.padding !== 'same') throw new UnsupportedKerasModel(`layer ${layer}: padding ${c.padding}`);
    if (sh === 1 && sw === 1) {
      // stride 1: TF's total padding is the dilated kernel extent minus one, the odd one at the end
      const th = (kh! - 1) * dh!, tw = (kw! - 1) * dw!;
      return { ...base, pads: [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)] };
    }
    return { ...base, auto_pad: 'SAME_UPPER' };
  };

  for (const layer of layers) {
    const c = layer.config;
    if (layer.inbound_nodes.length > 1) throw new UnsupportedKerasModel(`layer ${layer.name} is called more than once (shared layers are not supported)`);
    const ins = (layer.inbound_nodes[0] ?? []).map(([name, node, idx]) => {
      const v = values.get(name);
      if (!v || node !== 0 || idx !== 0) throw new UnsupportedKerasModel(`layer ${layer.name}: input ${name}[${node}][${idx}] is not available`);
      return v;
    });
    const x = ins[0]!;
    let y: Tensor;
    g.scope(layer.name, () => {
      switch (layer.class_name) {
        case 'InputLayer': {
          const shape = c.batch_input_shape as (number | null)[];
          y = { value: g.input(opts.input ?? 'input', 'float32', ['batch', shape[3] ?? 'channels', shape[1] ?? 'height', shape[2] ?? 'width']), rank: 4 };
          break;
        }
        case 'Conv2D': {
          if ((c.groups ?? 1) !== 1) throw new UnsupportedKerasModel(`layer ${layer.name}: grouped Conv2D`);
          const k = transposeConvKernel(weight(layer.name, 'kernel'));
          const inputs = [x.value, addWeight(`${layer.name}/kernel`, k.dims, k.data)];
          if (c.use_bias) inputs.push(plain(layer.name, 'bias'));
          y = activation({ value: g.op('Conv', inputs, convPads(c, layer.name)), rank: 4 }, c.activation, layer.name);
          break;
        }
        case 'DepthwiseConv2D': {
          const k = transposeDepthwiseKernel(weight(layer.name, 'depthwise_kernel'));
          const inputs = [x.value, addWeight(`${layer.name}/depthwise_kernel`, k.dims, k.data)];
          if (c.use_bias) inputs.push(plain(layer.name, 'bias'));
          const cin = weight(layer.name, 'depthwise_kernel').shape[2]!;
          y = activation({ value: g.op('Conv', inputs, { ...convPads(c, layer.name), group: cin }), rank: 4 }, c.activation, layer.name);
          break;
        }
        case 'BatchNormalization': {
          if (axisOf(c.axis as number, x.rank, layer.name) !== 1) throw new UnsupportedKerasModel(`layer ${layer.name}: BatchNormalization over axis ${c.axis}`);
          const mean = weight(layer.name, 'moving_mean');
          const ones = new Float32Array(mean.data.length).fill(1), zeros = new Float32Array(mean.data.length);
          const gamma = c.scale === false ? addWeight(`${layer.name}/gamma`, mean.shape, ones) : plain(layer.name, 'gamma');
          const beta = c.center === false ? addWeight(`${layer.name}/beta`, mean.shape, zeros) : plain(layer.name, 'beta');
          const inputs = [x.value, gamma, beta, plain(layer.name, 'moving_mean'), plain(layer.name, 'moving_variance')];
          y = { value: g.op('BatchNormalization', inputs, { epsilon: float(c.epsilon ?? 1e-3) }), rank: x.rank };
          break;
        }
        case 'ReLU': {
          if ((c.negative_slope ?? 0) !== 0 || (c.threshold ?? 0) !== 0) throw new UnsupportedKerasModel(`layer ${layer.name}: leaky or thresholded ReLU`);
          y = c.max_value == null ? { value: g.op('Relu', [x.value]), rank: x.rank } : { value: g.op('Clip', [x.value, g.scalar(0), g.scalar(c.max_value)]), rank: x.rank };
          break;
        }
        case 'Activation':
          y = activation(x, c.activation, layer.name);
          break;
        case 'ZeroPadding2D': {
          const p = c.padding as number[][] | number[] | number;
          const [[t, b], [l, r]] = typeof p === 'number' ? [[p, p], [p, p]] : typeof p[0] === 'number' ? [[p[0] as number, p[0] as number], [p[1] as number, p[1] as number]] : (p as number[][]);
          y = { value: g.op('Pad', [x.value, g.i64([0, 0, t!, l!, 0, 0, b!, r!])]), rank: 4 };
          break;
        }
        case 'Add':
          y = { value: ins.slice(1).reduce((acc, v) => g.op('Add', [acc, v.value]), x.value), rank: x.rank };
          break;
        case 'Concatenate':
          y = { value: g.op('Concat', ins.map((v) => v.value), { axis: axisOf(c.axis ?? -1, x.rank, layer.name) }), rank: x.rank };
          break;
        case 'AveragePooling2D': {
          if (c.padding !== 'valid') throw new UnsupportedKerasModel(`layer ${layer.name}: AveragePooling2D padding ${c.padding}`);
          y = { value: g.op('AveragePool', [x.value], { kernel_shape: c.pool_size, strides: c.strides ?? c.pool_size }), rank: 4 };
          break;
        }
        case 'GlobalAveragePooling2D':
          y = { value: g.op('Flatten', [g.op('GlobalAveragePool', [x.value])], { axis: 1 }), rank: 2 };
          break;
        case 'Flatten':
          // Keras flattens NHWC: channels last
          y = { value: g.op('Flatten', [x.rank === 4 ? g.op('Transpose', [x.value], { perm: [0, 2, 3, 1] }) : x.value], { axis: 1 }), rank: 2 };
          break;
        case 'Dense': {
          if (x.rank !== 2) throw new UnsupportedKerasModel(`layer ${layer.name}: Dense on a rank-${x.rank} tensor`);
          let v = g.op('MatMul', [x.value, plain(layer.name, 'kernel')]);
          if (c.use_bias) v = g.op('Add', [v, plain(layer.name, 'bias')]);
          y = activation({ value: v, rank: 2 }, c.activation, layer.name);
          break;
        }
        case 'Dropout':
          y = x;
          break;
        case 'UpSampling2D': {
          if ((c.interpolation ?? 'nearest') !== 'nearest') throw new UnsupportedKerasModel(`layer ${layer.name}: UpSampling2D interpolation ${c.interpolation}`);
          const [sh, sw] = c.size as number[];
          y = { value: g.op('Resize', [x.value, '', g.f32([1, 1, sh!, sw!])], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }), rank: 4 };
          break;
        }
        default:
          throw new UnsupportedKerasModel(`layer ${layer.name}: ${layer.class_name} layers are not supported`);
      }
    });
    values.set(layer.name, y!);
  }
  const unused = [...m.weights.keys()].filter((k) => !used.has(k));
  if (unused.length) throw new UnsupportedKerasModel(`weights not used by any layer: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', …' : ''}`);
  const out = values.get(output_layers[0]![0])!;
  g.output(out.value, opts.output ?? 'output', 'float32');
  return g;
}


