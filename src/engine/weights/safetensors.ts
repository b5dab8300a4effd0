// safetensors: an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
// then the raw tensor bytes. Tensors are read one by one at their file offset.
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { DTYPE_BYTES, numel, toFloat32 } from './dtype.ts';
import { readRange } from './file-range.ts';
import type { RawTensor, TensorInfo, WeightDType, WeightSource } from './types.ts';

const FROM_CODE: Record<string, WeightDType> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64', I64: 'int64', I32: 'int32', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
const TO_CODE = Object.fromEntries(Object.entries(FROM_CODE).map(([k, v]) => [v, k])) as Record<WeightDType, string>;
const MAX_HEADER = 100 * 1024 * 1024;

interface Entry extends TensorInfo {
  begin: number; // absolute file offset
  length: number;
}

export class SafetensorsFile implements WeightSource {
  private constructor(
    readonly path: string,
    private readonly entries: Map<string, Entry>,
    readonly metadata: Record<string, string>,
    private readonly print: string,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    const size = (await stat(path)).size;
    const fh = await open(path, 'r');
    let header: Buffer;
    try {
      const lenBuf = Buffer.alloc(8);
      await fh.read(lenBuf, 0, 8, 0);
      const n = Number(lenBuf.readBigUInt64LE(0));
      if (size < 8 || n > MAX_HEADER || 8 + n > size) throw new Error(`${path}: not a safetensors file (header length ${n}, file ${size} bytes)`);
      header = Buffer.alloc(n);
      await fh.read(header, 0, n, 8);
    } finally {
      await fh.close();
    }
    let json: Record<string, any>;
    try {
      json = JSON.parse(header.toString('utf8'));
    } catch (e) {
      throw new Error(`${path}: invalid safetensors header JSON (${(e as Error).message})`);
    }
    const dataStart = 8 + header.length;
    const entries = new Map<string, Entry>();
    for (const [name, h] of Object.entries(json)) {
      if (name === '__metadata__') continue;
      const dtype = FROM_CODE[h.dtype];
      if (!dtype) throw new Error(`${path}: tensor ${name} has unsupported dtype ${h.dtype}`);
      const [b, e] = h.data_offsets as [number, number];
      const length = e - b;
      if (!(b >= 0 && e >= b && dataStart + e <= size)) throw new Error(`${path}: tensor ${name} lies outside the file`);
      if (length !== numel(h.shape) * DTYPE_BYTES[dtype]) throw new Error(`${path}: tensor ${name} byte size ${length} does not match ${h.dtype}${JSON.stringify(h.shape)}`);
      entries.set(name, { dtype, shape: h.shape, begin: dataStart + b, length });
    }
    // Header hash + size: cheap, and changes whenever names, shapes, dtypes or layout change.
    const print = createHash('sha256').update(header).update(String(size)).digest('hex').slice(0, 32);
    return new SafetensorsFile(path, entries, json.__metadata__ ?? {}, print);
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  info(name: string): TensorInfo | undefined {
    const e = this.entries.get(name);
    return e && { dtype: e.dtype, shape: [...e.shape] };
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.path}: no tensor named ${name}`);
    return e;
  }

  async readRaw(name: string): Promise<RawTensor> {
    const e = this.entry(name);
    return { dtype: e.dtype, shape: [...e.shape], bytes: await readRange(this.path, e.begin, e.length) };
  }

  async readF32(name: string): Promise<Float32Array> {
    const raw = await this.readRaw(name);
    return toFloat32(raw.dtype, raw.bytes);
  }

  fingerprint(): string {
    return `st:${this.print}`;
  }
}

export function openSafetensors(path: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(path);
}

export type TensorData = Float32Array | Uint16Array | Float64Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;

export interface TensorToWrite {
  dtype: WeightDType;
  shape: number[];
  /** Element data; float16 and bfloat16 are given as their Uint16Array bit patterns. */
  data: TensorData;
}

/** The 8-byte length + JSON header, padded so that the data section starts 8-byte aligned. */
function encodeHeader(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const n = t.data.byteLength;
    if (n !== numel(t.shape) * DTYPE_BYTES[t.dtype]) throw new Error(`tensor ${name}: ${n} bytes do not match ${t.dtype}${JSON.stringify(t.shape)}`);
    header[name] = { dtype: TO_CODE[t.dtype], shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  return Buffer.concat([len, head]);
}

const bytesOf = (d: TensorData) => new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** Serializes tensors as one safetensors file in memory (for tiny demo models and LoRAs). */
export function encodeSafetensors(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Buffer {
  return Buffer.concat([encodeHeader(tensors, metadata), ...Object.values(tensors).map((t) => bytesOf(t.data))]);
}

/** Writes a safetensors file tensor by tensor (no whole-file buffer). */
export async function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Promise<void> {
  const head = encodeHeader(tensors, metadata);
  const fh = await open(path, 'w');
  try {
    await fh.write(head);
    for (const t of Object.values(tensors)) await fh.write(bytesOf(t.data));
  } finally {
    await fh.close();
  }
}
