// A reader for TFLite flatbuffer models (.tflite), following tensorflow/lite/schema/schema.fbs (the field
// numbers below are that schema's). It reads what an importer needs: one subgraph's tensors (shape, type,
// constant bytes, sparsity), its operators (builtin code or custom name, inputs, outputs, option table) and
// its inputs and outputs. No dependency: flatbuffers are little-endian tables reached through vtables.

/** TensorType of schema.fbs, the values this project reads. */
export const TENSOR_TYPES: Record<number, string> = { 0: 'float32', 1: 'float16', 2: 'int32', 3: 'uint8', 4: 'int64', 9: 'int8', 7: 'int16', 6: 'bool' };

/** BuiltinOperator of schema.fbs, the codes an importer may meet in MediaPipe models. */
export const BUILTIN_OPS: Record<number, string> = {
  0: 'ADD', 1: 'AVERAGE_POOL_2D', 2: 'CONCATENATION', 3: 'CONV_2D', 4: 'DEPTHWISE_CONV_2D', 5: 'DEPTH_TO_SPACE',
  6: 'DEQUANTIZE', 9: 'FULLY_CONNECTED', 14: 'LOGISTIC', 17: 'MAX_POOL_2D', 18: 'MUL', 19: 'RELU', 21: 'RELU6',
  22: 'RESHAPE', 23: 'RESIZE_BILINEAR', 25: 'SOFTMAX', 28: 'TANH', 34: 'PAD', 40: 'MEAN', 41: 'SUB', 45: 'STRIDED_SLICE',
  54: 'PRELU', 117: 'HARD_SWISH', 124: 'DENSIFY',
};

/** One flatbuffer table: field accessors by field number (schema order), absent fields read as the default. */
export class FbTable {
  private readonly vt: number;
  private readonly vtLen: number;
  constructor(readonly buf: DataView, readonly pos: number) {
    this.vt = pos - buf.getInt32(pos, true);
    this.vtLen = buf.getUint16(this.vt, true);
  }

  /** Absolute position of field `i`'s value, or 0 when the field is absent. */
  private field(i: number): number {
    const o = 4 + 2 * i;
    if (o >= this.vtLen) return 0;
    const rel = this.buf.getUint16(this.vt + o, true);
    return rel ? this.pos + rel : 0;
  }

  has(i: number): boolean {
    return this.field(i) !== 0;
  }
  i8(i: number, dflt = 0): number {
    const p = this.field(i);
    return p ? this.buf.getInt8(p) : dflt;
  }
  u8(i: number, dflt = 0): number {
    const p = this.field(i);
    return p ? this.buf.getUint8(p) : dflt;
  }
  i32(i: number, dflt = 0): number {
    const p = this.field(i);
    return p ? this.buf.getInt32(p, true) : dflt;
  }
  u32(i: number, dflt = 0): number {
    const p = this.field(i);
    return p ? this.buf.getUint32(p, true) : dflt;
  }
  u64(i: number, dflt = 0): number {
    const p = this.field(i);
    return p ? Number(this.buf.getBigUint64(p, true)) : dflt;
  }
  f32(i: number, dflt = 0): number {
    const p = this.field(i);
    return p ? this.buf.getFloat32(p, true) : dflt;
  }
  bool(i: number, dflt = false): boolean {
    return this.u8(i, dflt ? 1 : 0) !== 0;
  }

  private indirect(p: number): number {
    return p + this.buf.getUint32(p, true);
  }
  table(i: number): FbTable | null {
    const p = this.field(i);
    return p ? new FbTable(this.buf, this.indirect(p)) : null;
  }
  string(i: number): string {
    const p = this.field(i);
    if (!p) return '';
    const s = this.indirect(p);
    const n = this.buf.getUint32(s, true);
    return new TextDecoder().decode(new Uint8Array(this.buf.buffer, this.buf.byteOffset + s + 4, n));
  }
  /** A vector field: its element count and the position of element 0 (0 when absent). */
  vector(i: number): { n: number; at: number } {
    const p = this.field(i);
    if (!p) return { n: 0, at: 0 };
    const v = this.indirect(p);
    return { n: this.buf.getUint32(v, true), at: v + 4 };
  }
  tables(i: number): FbTable[] {
    const { n, at } = this.vector(i);
    return Array.from({ length: n }, (_, k) => new FbTable(this.buf, this.indirect(at + 4 * k)));
  }
  ints(i: number): number[] {
    const { n, at } = this.vector(i);
    return Array.from({ length: n }, (_, k) => this.buf.getInt32(at + 4 * k, true));
  }
  bytes(i: number): Uint8Array {
    const { n, at } = this.vector(i);
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset + at, n);
  }
}

/** SparsityParameters' per-dimension metadata (DimensionMetadata): DENSE with its size, or SPARSE_CSR. */
export interface DimMetadata {
  format: 'dense' | 'csr';
  denseSize: number;
  segments: number[];
  indices: number[];
}

export interface TfliteSparsity {
  traversalOrder: number[];
  blockMap: number[];
  dims: DimMetadata[];
}

export interface TfliteTensor {
  index: number;
  name: string;
  shape: number[];
  /** 'float32', 'float16', 'int32', ... */
  type: string;
  /** Constant bytes (a view into the file), or null for an activation. */
  data: Uint8Array | null;
  /** Quantised tensors are not supported by the importer; the reader records whether one is. */
  quantized: boolean;
  sparsity: TfliteSparsity | null;
}

export interface TfliteOperator {
  /** The builtin operator's schema name ('CONV_2D', ...), or 'CUSTOM:<name>'. */
  op: string;
  /** Tensor indices; -1 marks an omitted optional input. */
  inputs: number[];
  outputs: number[];
  /** The builtin options table (read with the option readers of tflite-import.ts), or null. */
  options: FbTable | null;
}

export interface TfliteModel {
  version: number;
  tensors: TfliteTensor[];
  operators: TfliteOperator[];
  inputs: number[];
  outputs: number[];
}

/** A SparseIndexVector union member (Int32Vector 1, Uint16Vector 2, Uint8Vector 3): its `values`. */
function indexVector(t: FbTable, typeField: number, valueField: number): number[] {
  const type = t.u8(typeField), v = t.table(valueField);
  if (!v) return [];
  const { n, at } = v.vector(0);
  const b = v.buf;
  if (type === 1) return Array.from({ length: n }, (_, k) => b.getInt32(at + 4 * k, true));
  if (type === 2) return Array.from({ length: n }, (_, k) => b.getUint16(at + 2 * k, true));
  if (type === 3) return Array.from({ length: n }, (_, k) => b.getUint8(at + k));
  throw new Error(`tflite sparse index vector type ${type} is not supported`);
}

/**
 * Parses a .tflite file's bytes (the first subgraph). Throws when the buffer is not a TFLite flatbuffer
 * (file identifier "TFL3") or holds more than one subgraph.
 */
export function readTflite(bytes: Uint8Array): TfliteModel {
  const buf = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 8 || new TextDecoder().decode(bytes.subarray(4, 8)) !== 'TFL3') throw new Error('not a TFLite model (no TFL3 identifier)');
  const model = new FbTable(buf, buf.getUint32(0, true));
  const codes = model.tables(1).map((c) => {
    const code = Math.max(c.i8(0), c.i32(3));
    return code === 32 ? `CUSTOM:${c.string(1)}` : (BUILTIN_OPS[code] ?? `BUILTIN_${code}`);
  });
  const buffers = model.tables(4).map((b) => {
    const offset = b.u64(1), size = b.u64(2);
    if (offset > 1) return bytes.subarray(offset, offset + size);
    const d = b.bytes(0);
    return d.length ? d : null;
  });
  const subgraphs = model.tables(2);
  if (subgraphs.length !== 1) throw new Error(`TFLite model has ${subgraphs.length} subgraphs; only single-subgraph models are supported`);
  const sg = subgraphs[0]!;
  const tensors = sg.tables(0).map((t, index): TfliteTensor => {
    const q = t.table(4);
    const sp = t.table(6);
    const typeCode = t.i8(1);
    const type = TENSOR_TYPES[typeCode];
    if (!type) throw new Error(`tflite tensor ${t.string(3)} has unsupported type ${typeCode}`);
    return {
      index,
      name: t.string(3),
      shape: t.ints(0),
      type,
      data: buffers[t.u32(2)] ?? null,
      quantized: !!q && (q.vector(2).n > 0 || q.vector(3).n > 0),
      sparsity: sp
        ? {
            traversalOrder: sp.ints(0),
            blockMap: sp.ints(1),
            dims: sp.tables(2).map((d) => ({
              format: d.i8(0) === 1 ? 'csr' : 'dense',
              denseSize: d.i32(1),
              segments: indexVector(d, 2, 3),
              indices: indexVector(d, 4, 5),
            })),
          }
        : null,
    };
  });
  const operators = sg.tables(3).map((o): TfliteOperator => ({
    op: codes[o.u32(0)] ?? `UNKNOWN_${o.u32(0)}`,
    inputs: o.ints(1),
    outputs: o.ints(2),
    options: o.table(4),
  }));
  return { version: model.u32(0), tensors, operators, inputs: sg.ints(1), outputs: sg.ints(2) };
}
