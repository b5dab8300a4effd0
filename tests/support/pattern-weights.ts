// The deterministic "random" weights of tools/oracle/annotator_checkpoints.py, regenerated bit for bit, served as
// an in-memory WeightSource with a checkpoint's keys and shapes (so a builder reads exactly what the .pth holds).
import type { TensorInfo, WeightSource } from '../../src/engine/weights/types.ts';

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** The pattern tensor of `key` (see the oracle's docstring). */
export function patternTensor(key: string, shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const seed = fnv1a(key);
  const fanIn = shape.length >= 2 ? n / shape[0]! : 1;
  // ViT token embeddings ([1, N, D]) get bound 1: the fan_in rule would make them ~1e-3
  const bound = /\.(pos_embed|cls_token)$/.test(key) ? 1 : shape.length >= 2 ? Math.sqrt(3 / fanIn) : 0.1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let u = (Math.imul(i, 2654435761 | 0) + seed) >>> 0;
    u = Math.imul(u ^ (u >>> 15), 0x2c1b3c6d) >>> 0;
    u = (u ^ (u >>> 12)) >>> 0;
    out[i] = ((u / 4294967296) * 2 - 1) * bound;
  }
  return out;
}

/** The checkpoint value of `key` as the oracle loads it: running_var and 1-d (norm scale) weights are 1 + w. */
export function patternValue(key: string, shape: number[]): Float32Array {
  const w = patternTensor(key, shape);
  return key.endsWith('running_var') || (key.endsWith('.weight') && shape.length === 1) ? w.map((v) => 1 + v) : w;
}

/** A WeightSource holding pattern tensors for these [key, shape] pairs (num_batches_tracked: int64 zeros). */
export function patternSource(keys: [string, number[]][]): WeightSource {
  const infos = new Map<string, TensorInfo>(keys.map(([k, s]) => [k, { dtype: k.endsWith('num_batches_tracked') ? 'int64' : 'float32', shape: s }]));
  return {
    keys: () => [...infos.keys()],
    info: (k) => infos.get(k),
    readF32: async (k) => {
      const i = infos.get(k);
      if (!i) throw new Error(`no tensor ${k}`);
      return i.dtype === 'int64' ? new Float32Array(i.shape.reduce((a, b) => a * b, 1)) : patternValue(k, i.shape);
    },
    fingerprint: () => 'pattern',
  };
}

/** The oracle's pattern input: x[i] = ((i * 7919 + 13) % 2001) / 2000 * scale. */
export function patternInput(shape: number[], scale: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (((i * 7919 + 13) % 2001) / 2000) * scale;
  return x;
}
