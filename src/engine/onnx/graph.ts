// A small typed builder for ONNX graphs. Values are tensor names (strings); ops append nodes in order.
// Initializers may be given lazily so that multi-GB weight sets are streamed to an external-data file
// one tensor at a time instead of being held in memory.
import { float32ToFloat16 } from '../weights/dtype.ts';
import { AttrType, DataType, type DType } from './proto.ts';

export type Value = string;
export type Dim = number | string;
export type TypedData = Float32Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array | Float64Array;
export type Attr = number | string | number[] | string[] | { f: number } | { floats: number[] } | { tensor: ConstTensor } | { graph: SubGraph };

/** A control-flow body (If's then/else branch): nodes that may read any value of the enclosing graph. */
export interface SubGraph {
  name: string;
  nodes: NodeSpec[];
  outputs: ValueSpec[];
}

export interface ConstTensor {
  dtype: DType;
  dims: number[];
  data: TypedData;
}

export interface Initializer {
  name: string;
  dtype: DType;
  dims: number[];
  /** The raw little-endian bytes, or a function producing them when the model is written. */
  data: TypedData | (() => TypedData | Promise<TypedData>);
}

export interface NodeSpec {
  opType: string;
  domain: string;
  inputs: Value[];
  outputs: Value[];
  name: string;
  attrs: Record<string, Attr>;
}

export interface ValueSpec {
  name: string;
  dtype: DType;
  /** Omitted: rank and shape left to ONNX Runtime's inference. */
  shape?: Dim[];
}

export const MS_DOMAIN = 'com.microsoft';

/** The element type a network computes in: weights and activations (graph I/O stays float32). */
export type FloatType = 'float32' | 'float16';

export interface GraphOptions {
  /** Weights and activations in this type (default float32); see toFloat / fromFloat for the I/O boundary. */
  floatType?: FloatType;
}

export class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  /** Where op() appends: the main graph, or the branch being built by subgraph(). */
  private target: NodeSpec[] = this.nodes;
  readonly initializers: Initializer[] = [];
  readonly inputs: ValueSpec[] = [];
  readonly outputs: ValueSpec[] = [];
  private readonly used = new Set<string>();
  private counter = 0;
  private scopes: string[] = [];

  /** The type weights and activations are emitted in; float32 graph inputs are cast to it with toFloat(). */
  readonly floatType: FloatType;

  constructor(readonly name: string, opts: GraphOptions = {}) {
    this.floatType = opts.floatType ?? 'float32';
  }

  /** Runs fn with a name prefix (like a torch module path), so node names read as the module tree. */
  scope<T>(prefix: string, fn: () => T): T {
    this.scopes.push(prefix);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  private unique(base: string): string {
    const full = [...this.scopes, base].join('/');
    let name = full;
    while (this.used.has(name)) name = `${full}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  input(name: string, dtype: DType, shape: Dim[]): Value {
    if (this.used.has(name)) throw new Error(`duplicate graph input ${name}`);
    this.used.add(name);
    this.inputs.push({ name, dtype, shape });
    return name;
  }

  output(value: Value, name: string, dtype: DType, shape?: Dim[]): void {
    const out = name === value ? value : this.op('Identity', [value], {}, { name });
    this.outputs.push({ name: out, dtype, shape });
  }

  /** Adds a weight tensor; its graph name is `name` exactly (weights keep their diffusers names). */
  weight(name: string, dtype: DType, dims: number[], data: Initializer['data']): Value {
    if (this.used.has(name)) throw new Error(`duplicate initializer ${name}`);
    this.used.add(name);
    this.initializers.push({ name, dtype, dims, data });
    return name;
  }

  /** A small constant tensor (shapes, scalars, axes) stored as an initializer. */
  const(data: TypedData, dims: number[], dtype: DType, hint = 'const'): Value {
    const name = this.unique(hint);
    this.initializers.push({ name, dtype, dims, data });
    return name;
  }

  f32(values: number[] | Float32Array, dims: number[] = [values.length]): Value {
    return this.const(Float32Array.from(values), dims, 'float32', 'f32');
  }

  /** A scalar in the activation type (floatType): the operand of arithmetic with activations. */
  scalar(v: number): Value {
    return this.act(Float32Array.of(v), []);
  }

  /** A constant in the activation type (floatType), given as float32 values (rounded to nearest for float16). */
  act(values: number[] | Float32Array, dims: number[] = [values.length]): Value {
    const f = Float32Array.from(values);
    if (this.floatType === 'float32') return this.const(f, dims, 'float32', 'f32');
    return this.const(float32ToFloat16(f), dims, 'float16', 'f16');
  }

  /** Casts v to `to` (an ONNX Cast node). */
  cast(v: Value, to: DType): Value {
    return this.op('Cast', [v], { to: DataType[to] });
  }

  /** A float32 value (a graph input, a float32 island's result) in the activation type; no node for float32. */
  toFloat(v: Value): Value {
    return this.floatType === 'float32' ? v : this.cast(v, this.floatType);
  }

  /** An activation back to float32 (graph outputs, float32 islands); no node for float32 graphs. */
  fromFloat(v: Value): Value {
    return this.floatType === 'float32' ? v : this.cast(v, 'float32');
  }

  i64(values: number[], dims: number[] = [values.length]): Value {
    return this.const(BigInt64Array.from(values.map((v) => BigInt(v))), dims, 'int64', 'i64');
  }

  /** Appends one node and returns its single output. */
  op(opType: string, inputs: Value[], attrs: Record<string, Attr> = {}, opts: { domain?: string; name?: string } = {}): Value {
    return this.opN(opType, inputs, 1, attrs, opts)[0]!;
  }

  /** Appends one node with several outputs. An empty string in inputs marks an omitted optional input. */
  opN(opType: string, inputs: Value[], nOutputs: number, attrs: Record<string, Attr> = {}, opts: { domain?: string; name?: string } = {}): Value[] {
    const nodeName = this.unique(opts.name ?? opType);
    const outputs = Array.from({ length: nOutputs }, (_, i) => (nOutputs === 1 && opts.name ? nodeName : `${nodeName}:${i}`));
    this.target.push({ opType, domain: opts.domain ?? '', inputs, outputs, name: nodeName, attrs });
    return outputs;
  }

  /**
   * Builds a branch body: the nodes fn appends go into the subgraph (constants and weights it creates stay
   * initializers of the main graph, which ONNX lets a subgraph read), and its results become the branch outputs.
   */
  subgraph(name: string, fn: () => { value: Value; dtype: DType }[]): SubGraph {
    const outer = this.target;
    const nodes: NodeSpec[] = [];
    this.target = nodes;
    try {
      // Each output is a node of this branch (an outer value or a constant cannot be a branch output as such).
      const outputs = fn().map((o) => ({ name: this.op('Identity', [o.value]), dtype: o.dtype }));
      return { name: this.unique(name), nodes, outputs };
    } finally {
      this.target = outer;
    }
  }

  /** ONNX If: runs only the chosen branch (cond: bool with one element); both return the same count and dtypes. */
  ifElse(cond: Value, then: () => Value[], otherwise: () => Value[], dtypes: DType[], name = 'If'): Value[] {
    const typed = (vs: Value[]) => {
      if (vs.length !== dtypes.length) throw new Error(`If branch returns ${vs.length} values, expected ${dtypes.length}`);
      return vs.map((value, i) => ({ value, dtype: dtypes[i]! }));
    };
    const thenBranch = this.subgraph(`${name}_then`, () => typed(then()));
    const elseBranch = this.subgraph(`${name}_else`, () => typed(otherwise()));
    return this.opN('If', [cond], dtypes.length, { then_branch: { graph: thenBranch }, else_branch: { graph: elseBranch } }, { name });
  }
}

/** Forces FLOAT for a whole-number float attribute (epsilon = 1, alpha = 1.0, ...). */
export const float = (f: number): { f: number } => ({ f });
export const floats = (values: number[]): { floats: number[] } => ({ floats: values });

/** Converts one attribute to its AttributeProto form: integers are INT unless wrapped with float(). */
export function encodeAttr(name: string, v: Attr, tensorToProto: (t: ConstTensor) => object, graphToProto?: (g: SubGraph) => object): object {
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: AttrType.INT, i: v } : { name, type: AttrType.FLOAT, f: v };
  if (typeof v === 'string') return { name, type: AttrType.STRING, s: Buffer.from(v) };
  if (Array.isArray(v)) {
    if (v.length > 0 && typeof v[0] === 'string') return { name, type: AttrType.STRINGS, strings: (v as string[]).map((x) => Buffer.from(x)) };
    return { name, type: AttrType.INTS, ints: v as number[] };
  }
  if ('f' in v) return { name, type: AttrType.FLOAT, f: v.f };
  if ('floats' in v) return { name, type: AttrType.FLOATS, floats: v.floats };
  if ('graph' in v) {
    if (!graphToProto) throw new Error(`attribute ${name}: a subgraph needs a graph encoder`);
    return { name, type: AttrType.GRAPH, g: graphToProto(v.graph) };
  }
  return { name, type: AttrType.TENSOR, t: tensorToProto(v.tensor) };
}
