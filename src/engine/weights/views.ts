// WeightSources that present other sources under new names: renamed, prefixed, reshaped and merged views.
// Key conversion builds on these, so converted checkpoints are never copied in memory.
import { createHash } from 'node:crypto';
import { numel, toFloat32 } from './dtype.ts';
import type { RawTensor, TensorInfo, WeightSource } from './types.ts';

export interface MappedTensor {
  source: WeightSource;
  /** Name in `source`. */
  name: string;
  /** A new shape with the same element count (e.g. a 1x1 conv kernel read as a linear weight). */
  shape?: number[];
  /** Only rows [start, end) of the first axis (e.g. the q, k or v third of a fused in_proj weight). */
  rows?: [number, number];
}

/** The shape a mapped tensor presents: its rows, then its reshape. */
function mappedShape(e: MappedTensor, stored: number[]): number[] {
  if (e.shape) return [...e.shape];
  return e.rows ? [e.rows[1] - e.rows[0], ...stored.slice(1)] : stored;
}

/** The tensors of other sources under explicit new names. */
export class MappedSource implements WeightSource {
  private readonly print: string;

  constructor(private readonly entries: Map<string, MappedTensor>, label = 'mapped') {
    const h = createHash('sha256').update(label);
    for (const [to, e] of entries) {
      const info = e.source.info(e.name);
      if (!info) throw new Error(`weight ${e.name} (for ${to}) is not in its source`);
      if (e.rows && (info.shape.length === 0 || e.rows[0] < 0 || e.rows[1] > info.shape[0]! || e.rows[0] >= e.rows[1])) {
        throw new Error(`cannot take rows ${e.rows[0]}..${e.rows[1]} of ${e.name} ${JSON.stringify(info.shape)}`);
      }
      if (e.shape && e.rows) throw new Error(`${e.name}: a view takes rows or a new shape, not both`);
      if (e.shape && numel(e.shape) !== numel(info.shape)) throw new Error(`cannot view ${e.name} ${JSON.stringify(info.shape)} as ${JSON.stringify(e.shape)}`);
      h.update(`${to}\0${e.source.fingerprint()}\0${e.name}\0${e.shape?.join(',') ?? ''}\0${e.rows?.join(',') ?? ''}\n`);
    }
    this.print = h.digest('hex').slice(0, 32);
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  info(name: string): TensorInfo | undefined {
    const e = this.entries.get(name);
    if (!e) return undefined;
    const info = e.source.info(e.name)!;
    return { dtype: info.dtype, shape: mappedShape(e, info.shape) };
  }

  private entry(name: string): MappedTensor {
    const e = this.entries.get(name);
    if (!e) throw new Error(`no weight named ${name}`);
    return e;
  }

  async readF32(name: string): Promise<Float32Array> {
    const e = this.entry(name);
    const data = await e.source.readF32(e.name);
    if (!e.rows) return data;
    const row = data.length / e.source.info(e.name)!.shape[0]!;
    return data.slice(e.rows[0] * row, e.rows[1] * row);
  }

  async readRaw(name: string): Promise<RawTensor> {
    const e = this.entry(name);
    const raw = await readRawOf(e.source, e.name);
    if (e.rows) {
      const rowBytes = raw.bytes.byteLength / raw.shape[0]!;
      return { ...raw, shape: mappedShape(e, raw.shape), bytes: raw.bytes.slice(e.rows[0] * rowBytes, e.rows[1] * rowBytes) };
    }
    return e.shape ? { ...raw, shape: [...e.shape] } : raw;
  }

  fingerprint(): string {
    return `map:${this.print}`;
  }
}

/** Raw bytes from any source; one without readRaw falls back to its float32 data. */
export async function readRawOf(source: WeightSource, name: string): Promise<RawTensor> {
  if (source.readRaw) return source.readRaw(name);
  const info = source.info(name);
  if (!info) throw new Error(`no weight named ${name}`);
  const data = await source.readF32(name);
  return { dtype: 'float32', shape: info.shape, bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** The keys for which `rename` returns a name, under that name. */
export function renamedView(source: WeightSource, rename: (name: string) => string | undefined, label = 'renamed'): MappedSource {
  const entries = new Map<string, MappedTensor>();
  for (const key of source.keys()) {
    const to = rename(key);
    if (to === undefined) continue;
    if (entries.has(to)) throw new Error(`both ${entries.get(to)!.name} and ${key} map to ${to}`);
    entries.set(to, { source, name: key });
  }
  return new MappedSource(entries, label);
}

/** The keys starting with `prefix`, with the prefix removed (e.g. "state_dict." or "text_model."). */
export function prefixedView(source: WeightSource, prefix: string): MappedSource {
  return renamedView(source, (k) => (k.startsWith(prefix) ? k.slice(prefix.length) : undefined), `prefix:${prefix}`);
}

/** The union of several sources (e.g. sharded files); a name present twice is an error. */
export function mergedSources(sources: WeightSource[]): MappedSource {
  const entries = new Map<string, MappedTensor>();
  for (const source of sources) {
    for (const key of source.keys()) {
      if (entries.has(key)) throw new Error(`weight ${key} appears in more than one file`);
      entries.set(key, { source, name: key });
    }
  }
  return new MappedSource(entries, 'merged');
}

/** Tensors held in memory (tests, LoRA-merged weights, generated demo models). */
export class MemorySource implements WeightSource {
  private readonly print: string;

  constructor(private readonly tensors: Map<string, RawTensor>, label?: string) {
    const h = createHash('sha256');
    if (label) h.update(label);
    else for (const [k, t] of tensors) h.update(k).update(t.dtype).update(t.shape.join(',')).update(t.bytes);
    this.print = h.digest('hex').slice(0, 32);
  }

  static fromF32(tensors: Record<string, { shape: number[]; data: Float32Array }>): MemorySource {
    return new MemorySource(new Map(Object.entries(tensors).map(([k, t]) => [k, {
      dtype: 'float32', shape: t.shape, bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
    }])));
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TensorInfo | undefined {
    const t = this.tensors.get(name);
    return t && { dtype: t.dtype, shape: [...t.shape] };
  }

  async readRaw(name: string): Promise<RawTensor> {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no weight named ${name}`);
    return { dtype: t.dtype, shape: [...t.shape], bytes: t.bytes.slice() };
  }

  async readF32(name: string): Promise<Float32Array> {
    const t = await this.readRaw(name);
    return toFloat32(t.dtype, t.bytes);
  }

  fingerprint(): string {
    return `mem:${this.print}`;
  }
}
