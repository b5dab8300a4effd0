// Reads the oracle's fixtures (tools/oracle/common.py: <name>.json header + <name>.bin raw tensors).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

export interface FixtureTensor {
  dtype: string;
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array | Float64Array | Uint16Array;
}

export interface Fixture {
  meta: Record<string, any>;
  tensors: Record<string, FixtureTensor>;
  get(key: string): FixtureTensor;
  f32(key: string): Float32Array;
}

const ctors: Record<string, any> = {
  float32: Float32Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array, float64: Float64Array,
  uint16: Uint16Array, bool: Uint8Array, float16: Uint16Array,
};

export function loadFixture(name: string): Fixture {
  const header = JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'));
  const bin = readFileSync(join(FIXTURES, `${name}.bin`));
  const tensors: Record<string, FixtureTensor> = {};
  for (const [key, h] of Object.entries<any>(header.tensors)) {
    const C = ctors[h.dtype];
    if (!C) throw new Error(`fixture ${name}: unsupported dtype ${h.dtype}`);
    const copy = new Uint8Array(h.length);
    copy.set(bin.subarray(h.offset, h.offset + h.length));
    tensors[key] = { dtype: h.dtype, shape: h.shape, data: new C(copy.buffer) };
  }
  return {
    meta: header.meta,
    tensors,
    get(key) {
      const t = tensors[key];
      if (!t) throw new Error(`fixture ${name} has no tensor ${key}`);
      return t;
    },
    f32(key) {
      const t = this.get(key);
      if (!(t.data instanceof Float32Array)) throw new Error(`fixture ${name}:${key} is ${t.dtype}, not float32`);
      return t.data;
    },
  };
}

/** Max absolute difference, failing on length mismatch or NaN. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Max of |a-b| / max(|b|, floor): the relative error the scheduler checks use. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!) / Math.max(Math.abs(b[i]!), floor);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}
