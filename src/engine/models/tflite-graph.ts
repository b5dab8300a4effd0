// Translates a TFLite model (read by weights/tflite.ts) into our ONNX GraphBuilder, operator by operator,
// following the TFLite reference kernels (tensorflow/lite/kernels/*.cc) for each op's semantics.
//
// Layout: TFLite activations are NHWC; ONNX convolutions are NCHW. Every 4-D activation is kept NCHW in the
// graph (logically still the TFLite NHWC tensor) and transposed back only where an op needs the NHWC order
// (RESHAPE, outputs). Constants are folded at import: DEQUANTIZE of float16 constants becomes a float32
// constant and DENSIFY of a CSR-sparse constant becomes a dense one, so the ONNX graph holds only float32.
// Quantised (int8/uint8) models and ops outside the list in `translateOp` are refused with an error naming them.
import { GraphBuilder, type Value } from '../onnx/graph.ts';
import { float16ToFloat32, numel } from '../weights/dtype.ts';
import type { FbTable, TfliteModel, TfliteSparsity, TfliteTensor } from '../weights/tflite.ts';

type Layout = 'nchw' | 'plain';

interface Act {
  value: Value;
  /** 'nchw': a 4-D NHWC TFLite tensor stored transposed to NCHW; 'plain': stored in TFLite's own order */
  layout: Layout;
}

/** A constant known at import time: float32 (after dequantisation) or int32 (shapes, paddings). */
interface Const {
  shape: number[];
  data: Float32Array | Int32Array;
}

const NHWC_TO_NCHW = [0, 3, 1, 2];
const NCHW_TO_NHWC = [0, 2, 3, 1];

/** CSR (and dense) sparse tensor → dense values in row-major order; identity traversal order, no block map. */
export function densify(values: ArrayLike<number>, shape: number[], sp: TfliteSparsity): Float32Array {
  if (sp.blockMap.length > 0 || sp.traversalOrder.some((d, i) => d !== i) || sp.dims.length !== shape.length) {
    throw new Error('tflite sparse tensor: only identity traversal order without blocks is supported');
  }
  const out = new Float32Array(numel(shape));
  const rec = (level: number, pos: number, flat: number): void => {
    if (level === shape.length) {
      out[flat] = values[pos]!;
      return;
    }
    const d = sp.dims[level]!;
    if (d.format === 'dense') {
      for (let i = 0; i < d.denseSize; i++) rec(level + 1, pos * d.denseSize + i, flat * shape[level]! + i);
    } else {
      for (let k = d.segments[pos]!; k < d.segments[pos + 1]!; k++) rec(level + 1, k, flat * shape[level]! + d.indices[k]!);
    }
  };
  rec(0, 0, 0);
  return out;
}

function transpose4(data: Float32Array, shape: number[], perm: number[]): { data: Float32Array; shape: number[] } {
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = [shape[1]! * shape[2]! * shape[3]!, shape[2]! * shape[3]!, shape[3]!, 1];
  const out = new Float32Array(data.length);
  let o = 0;
  for (let a = 0; a < outShape[0]!; a++) for (let b = 0; b < outShape[1]!; b++) for (let c = 0; c < outShape[2]!; c++) for (let d = 0; d < outShape[3]!; d++) {
    const idx = [a, b, c, d];
    let src = 0;
    for (let k = 0; k < 4; k++) src += idx[k]! * inStrides[perm[k]!]!;
    out[o++] = data[src]!;
  }
  return { data: out, shape: outShape };
}

/** TF 'SAME' padding for one spatial axis: [before, after]. */
function samePads(inSize: number, k: number, stride: number): [number, number] {
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + k - inSize, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

class Translator {
  readonly g: GraphBuilder;
  private readonly acts = new Map<number, Act>();
  private readonly consts = new Map<number, Const>();
  private readonly converted = new Map<string, Value>();

  constructor(readonly m: TfliteModel, name: string) {
    this.g = new GraphBuilder(name);
  }

  private t(i: number): TfliteTensor {
    const t = this.m.tensors[i];
    if (!t) throw new Error(`tflite tensor index ${i} out of range`);
    return t;
  }

  /** The constant behind tensor i (its buffer, or an import-time folded DEQUANTIZE/DENSIFY), or null. */
  constOf(i: number): Const | null {
    const c = this.consts.get(i);
    if (c) return c;
    const t = this.t(i);
    if (!t.data || this.acts.has(i)) return null;
    if (t.quantized) throw new Error(`tflite tensor ${t.name} is quantised; only float models are supported`);
    const b = t.data;
    let data: Float32Array | Int32Array;
    if (t.type === 'float32') data = new Float32Array(b.slice().buffer);
    else if (t.type === 'float16') data = float16ToFloat32(new Uint16Array(b.slice().buffer));
    else if (t.type === 'int32') data = new Int32Array(b.slice().buffer);
    else throw new Error(`tflite constant ${t.name} has type ${t.type}`);
    if (t.sparsity) {
      // stays sparse until DENSIFY; the values are the stored non-zeros
      const k: Const = { shape: t.shape, data };
      this.consts.set(i, k);
      return k;
    }
    if (data.length !== numel(t.shape)) throw new Error(`tflite constant ${t.name}: ${data.length} values for shape [${t.shape}]`);
    const k: Const = { shape: t.shape, data };
    this.consts.set(i, k);
    return k;
  }

  private needConst(i: number, what: string): Const {
    const c = this.constOf(i);
    if (!c) throw new Error(`tflite ${what} (${this.t(i).name}) must be a constant`);
    return c;
  }

  private constValue(c: Const, hint: string): Value {
    return c.data instanceof Float32Array ? this.g.const(c.data, c.shape, 'float32', hint) : this.g.const(c.data, c.shape, 'int32', hint);
  }

  /** Tensor i as a graph value in the requested layout (4-D only for 'nchw'). */
  get(i: number, layout: Layout): Value {
    const a = this.acts.get(i);
    if (!a) {
      const c = this.constOf(i);
      if (!c) throw new Error(`tflite tensor ${this.t(i).name} is used before it is computed`);
      if (layout === 'nchw') {
        if (c.shape.length !== 4 || !(c.data instanceof Float32Array)) throw new Error(`tflite constant ${this.t(i).name} cannot be used as an NCHW activation`);
        const tr = transpose4(c.data, c.shape, NHWC_TO_NCHW);
        return this.g.const(tr.data, tr.shape, 'float32', 'nchw_const');
      }
      return this.constValue(c, 'const');
    }
    if (a.layout === layout) return a.value;
    const key = `${a.value}|${layout}`;
    let v = this.converted.get(key);
    if (!v) {
      v = this.g.op('Transpose', [a.value], { perm: layout === 'nchw' ? NHWC_TO_NCHW : NCHW_TO_NHWC });
      this.converted.set(key, v);
    }
    return v;
  }

  /** Layout of activation i (constants count as plain). */
  layoutOf(i: number): Layout {
    return this.acts.get(i)?.layout ?? 'plain';
  }

  set(i: number, value: Value, layout: Layout): void {
    this.acts.set(i, { value, layout });
  }

  /** A constant operand of an elementwise op with a 4-D NCHW partner: broadcast shape moved to NCHW. */
  private broadcastConst(c: Const): Value {
    if (!(c.data instanceof Float32Array)) throw new Error('elementwise constant must be float');
    const shape = [...Array(Math.max(0, 4 - c.shape.length)).fill(1), ...c.shape];
    const tr = transpose4(c.data, shape, NHWC_TO_NCHW);
    return this.g.const(tr.data, tr.shape, 'float32', 'bcast_const');
  }

  /** Both operands of a binary elementwise op, in one layout. */
  private binary(a: number, b: number): { x: Value; y: Value; layout: Layout } {
    const ta = this.t(a), tb = this.t(b);
    const ca = this.acts.has(a) ? null : this.constOf(a), cb = this.acts.has(b) ? null : this.constOf(b);
    const nchw = (this.layoutOf(a) === 'nchw' || this.layoutOf(b) === 'nchw') && ta.shape.length <= 4 && tb.shape.length <= 4;
    if (!nchw) return { x: this.get(a, 'plain'), y: this.get(b, 'plain'), layout: 'plain' };
    const side = (i: number, c: Const | null, t: TfliteTensor) => (c ? this.broadcastConst(c) : t.shape.length === 4 ? this.get(i, 'nchw') : null);
    const x = side(a, ca, ta), y = side(b, cb, tb);
    if (x === null || y === null) return { x: this.get(a, 'plain'), y: this.get(b, 'plain'), layout: 'plain' };
    return { x, y, layout: 'nchw' };
  }

  private activation(v: Value, fused: number): Value {
    switch (fused) {
      case 0: return v;
      case 1: return this.g.op('Relu', [v]);
      case 2: return this.g.op('Clip', [v, this.g.scalar(-1), this.g.scalar(1)]);
      case 3: return this.g.op('Clip', [v, this.g.scalar(0), this.g.scalar(6)]);
      case 4: return this.g.op('Tanh', [v]);
      default: throw new Error(`tflite fused activation ${fused} is not supported`);
    }
  }

  private conv(inputs: number[], o: FbTable, depthwise: boolean): Value {
    // Conv2DOptions: padding 0, stride_w 1, stride_h 2, fused 3, dilation_w 4, dilation_h 5
    // DepthwiseConv2DOptions: padding 0, stride_w 1, stride_h 2, depth_multiplier 3, fused 4, dilation_w 5, dilation_h 6
    const padding = o.i8(0), sw = o.i32(1, 1), sh = o.i32(2, 1);
    const fused = o.i8(depthwise ? 4 : 3);
    const dw = o.i32(depthwise ? 5 : 4, 1), dh = o.i32(depthwise ? 6 : 5, 1);
    const inShape = this.t(inputs[0]!).shape;
    const w = this.needConst(inputs[1]!, 'convolution weight');
    if (!(w.data instanceof Float32Array) || w.shape.length !== 4) throw new Error('convolution weight must be a 4-D float tensor');
    // CONV_2D weight [O,KH,KW,I] → [O,I,KH,KW]; DEPTHWISE [1,KH,KW,C*M] → [C*M,1,KH,KW]
    const wt = depthwise ? transpose4(w.data, w.shape, [3, 0, 1, 2]) : transpose4(w.data, w.shape, NHWC_TO_NCHW);
    const kh = w.shape[1]!, kw = w.shape[2]!;
    const group = depthwise ? inShape[3]! : inShape[3]! / w.shape[3]!;
    const ins = [this.get(inputs[0]!, 'nchw'), this.g.const(wt.data, wt.shape, 'float32', 'weight')];
    const bias = inputs[2] !== undefined && inputs[2] >= 0 ? this.needConst(inputs[2], 'convolution bias') : null;
    if (bias) ins.push(this.constValue(bias, 'bias'));
    const [pt, pb] = padding === 0 ? samePads(inShape[1]!, (kh - 1) * dh + 1, sh) : [0, 0];
    const [pl, pr] = padding === 0 ? samePads(inShape[2]!, (kw - 1) * dw + 1, sw) : [0, 0];
    const y = this.g.op('Conv', ins, { kernel_shape: [kh, kw], strides: [sh, sw], dilations: [dh, dw], pads: [pt, pl, pb, pr], group });
    return this.activation(y, fused);
  }

  private pool(inputs: number[], o: FbTable, type: 'MaxPool' | 'AveragePool'): Value {
    // Pool2DOptions: padding 0, stride_w 1, stride_h 2, filter_width 3, filter_height 4, fused 5
    const padding = o.i8(0), sw = o.i32(1), sh = o.i32(2), fw = o.i32(3), fh = o.i32(4), fused = o.i8(5);
    const inShape = this.t(inputs[0]!).shape;
    const [pt, pb] = padding === 0 ? samePads(inShape[1]!, fh, sh) : [0, 0];
    const [pl, pr] = padding === 0 ? samePads(inShape[2]!, fw, sw) : [0, 0];
    // TFLite's average pool divides by the number of in-image taps (count_include_pad = 0)
    const attrs = { kernel_shape: [fh, fw], strides: [sh, sw], pads: [pt, pl, pb, pr], ...(type === 'AveragePool' ? { count_include_pad: 0 } : {}) };
    return this.activation(this.g.op(type, [this.get(inputs[0]!, 'nchw')], attrs), fused);
  }

  translateOp(op: string, inputs: number[], outputs: number[], o: FbTable | null): void {
    const g = this.g;
    const out = outputs[0]!;
    const opt = (): FbTable => {
      if (!o) throw new Error(`tflite ${op} has no options`);
      return o;
    };
    const fusedOf = (field: number) => (o ? o.i8(field) : 0);
    switch (op) {
      case 'DEQUANTIZE': {
        const c = this.needConst(inputs[0]!, 'DEQUANTIZE input');
        this.consts.set(out, { shape: this.t(out).shape, data: Float32Array.from(c.data) });
        return;
      }
      case 'DENSIFY': {
        const t = this.t(inputs[0]!);
        const c = this.needConst(inputs[0]!, 'DENSIFY input');
        if (!t.sparsity) throw new Error(`tflite DENSIFY input ${t.name} is not sparse`);
        this.consts.set(out, { shape: t.shape, data: densify(c.data, t.shape, t.sparsity) });
        return;
      }
      case 'CONV_2D':
        return this.set(out, this.conv(inputs, opt(), false), 'nchw');
      case 'DEPTHWISE_CONV_2D':
        return this.set(out, this.conv(inputs, opt(), true), 'nchw');
      case 'MAX_POOL_2D':
        return this.set(out, this.pool(inputs, opt(), 'MaxPool'), 'nchw');
      case 'AVERAGE_POOL_2D':
        return this.set(out, this.pool(inputs, opt(), 'AveragePool'), 'nchw');
      case 'ADD':
      case 'MUL':
      case 'SUB': {
        const { x, y, layout } = this.binary(inputs[0]!, inputs[1]!);
        const onnx = op === 'ADD' ? 'Add' : op === 'MUL' ? 'Mul' : 'Sub';
        // AddOptions / MulOptions / SubOptions: fused_activation_function is field 0
        return this.set(out, this.activation(g.op(onnx, [x, y]), fusedOf(0)), layout);
      }
      case 'RELU':
      case 'RELU6':
      case 'LOGISTIC':
      case 'TANH':
      case 'HARD_SWISH': {
        const layout = this.layoutOf(inputs[0]!);
        const x = this.get(inputs[0]!, layout);
        const y = op === 'RELU' ? g.op('Relu', [x]) : op === 'RELU6' ? g.op('Clip', [x, g.scalar(0), g.scalar(6)])
          : op === 'LOGISTIC' ? g.op('Sigmoid', [x]) : op === 'TANH' ? g.op('Tanh', [x]) : g.op('HardSwish', [x]);
        return this.set(out, y, layout);
      }
      case 'PRELU': {
        const { x, y, layout } = this.binary(inputs[0]!, inputs[1]!);
        return this.set(out, g.op('PRelu', [x, y]), layout);
      }
      case 'PAD': {
        const p = this.needConst(inputs[1]!, 'PAD paddings');
        const rank = p.shape[0]!;
        const before = Array.from({ length: rank }, (_, k) => p.data[2 * k]!), after = Array.from({ length: rank }, (_, k) => p.data[2 * k + 1]!);
        const layout = rank === 4 ? this.layoutOf(inputs[0]!) : 'plain';
        const perm = layout === 'nchw' ? NHWC_TO_NCHW : Array.from({ length: rank }, (_, k) => k);
        const pads = [...perm.map((k) => before[k]!), ...perm.map((k) => after[k]!)];
        return this.set(out, g.op('Pad', [this.get(inputs[0]!, layout), g.i64(pads)], { mode: 'constant' }), layout);
      }
      case 'RESHAPE': {
        const shape = this.t(out).shape;
        return this.set(out, g.op('Reshape', [this.get(inputs[0]!, 'plain'), g.i64(shape)]), 'plain');
      }
      case 'CONCATENATION': {
        // ConcatenationOptions: axis 0, fused 1
        const rank = this.t(out).shape.length;
        let axis = opt().i32(0);
        if (axis < 0) axis += rank;
        const nchw = rank === 4 && inputs.every((i) => this.layoutOf(i) === 'nchw');
        const layout: Layout = nchw ? 'nchw' : 'plain';
        const y = g.op('Concat', inputs.map((i) => this.get(i, layout)), { axis: nchw ? NHWC_TO_NCHW.indexOf(axis) : axis });
        return this.set(out, this.activation(y, fusedOf(1)), layout);
      }
      case 'RESIZE_BILINEAR': {
        // ResizeBilinearOptions: new_height 0, new_width 1 (deprecated), align_corners 2, half_pixel_centers 3
        const size = this.needConst(inputs[1]!, 'RESIZE_BILINEAR size');
        const alignCorners = o ? o.bool(2) : false, halfPixel = o ? o.bool(3) : false;
        const n = this.t(inputs[0]!).shape;
        const sizes = g.i64([n[0]!, n[3]!, size.data[0]!, size.data[1]!]);
        const mode = alignCorners ? 'align_corners' : halfPixel ? 'half_pixel' : 'asymmetric';
        const y = g.op('Resize', [this.get(inputs[0]!, 'nchw'), '', '', sizes], { mode: 'linear', coordinate_transformation_mode: mode });
        return this.set(out, y, 'nchw');
      }
      case 'DEPTH_TO_SPACE': {
        // TF's depth_to_space (NHWC) takes channel (i*bs + j)*C + c to pixel offset (i, j): ONNX DCR mode
        const bs = opt().i32(0);
        return this.set(out, g.op('DepthToSpace', [this.get(inputs[0]!, 'nchw')], { blocksize: bs, mode: 'DCR' }), 'nchw');
      }
      default:
        throw new Error(`tflite operator ${op} is not supported by the importer`);
    }
  }

  run(): GraphBuilder {
    const g = this.g;
    for (const i of this.m.inputs) {
      const t = this.t(i);
      if (t.type !== 'float32') throw new Error(`tflite input ${t.name} is ${t.type}; only float32 inputs are supported`);
      const v = g.input(t.name, 'float32', t.shape);
      this.set(i, v, 'plain');
    }
    for (const op of this.m.operators) this.translateOp(op.op, op.inputs, op.outputs, op.options);
    for (const i of this.m.outputs) {
      const t = this.t(i);
      g.output(this.get(i, 'plain'), t.name, 'float32', t.shape);
    }
    return g;
  }
}

/**
 * The ONNX graph of a TFLite model: inputs and outputs keep the TFLite tensor names, shapes (NHWC) and float32
 * type, so a run feeds and returns exactly what tflite-runtime does. Throws naming the first unsupported
 * operator, quantised tensor or non-constant weight.
 */
export function tfliteToGraph(model: TfliteModel, name: string): GraphBuilder {
  return new Translator(model, name).run();
}
