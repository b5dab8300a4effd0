// What bench/gpu/diffusers_step.py leaves for the engine's half of bench/gpu.sh: its inputs, outputs and (with
// --diagnose) fp32 ControlNet residuals in io.bin, located by the `io` table of diffusers_result.json; and the
// comparisons both engine scripts (engine-step.ts, engine-diagnose.ts) make with them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';

interface Header { io: Record<string, { shape: number[]; offset: number; length: number }> }

/** The tensors diffusers_step.py wrote under `work`, as float32 host tensors by name. */
export class DiffusersIO {
  private readonly header: Header;
  private readonly bin: Buffer;

  constructor(work: string) {
    this.header = JSON.parse(readFileSync(join(work, 'diffusers_result.json'), 'utf8'));
    this.bin = readFileSync(join(work, 'io.bin'));
  }

  has(k: string): boolean {
    return k in this.header.io;
  }

  /** A fresh float32 tensor with io.bin's `k`. @throws Error naming `k` when io.bin has no such tensor. */
  host(k: string): ort.Tensor {
    const h = this.header.io[k];
    if (!h) throw new Error(`io.bin has no ${k}`);
    const a = new Float32Array(h.length / 4);
    new Uint8Array(a.buffer).set(this.bin.subarray(h.offset, h.offset + h.length));
    return new ort.Tensor('float32', a, h.shape);
  }
}

/** ‖a − b‖ / ‖b‖ over several tensor pairs taken together (one pair: the usual relative L2 difference). */
export function relL2(a: ArrayLike<number>[] | ArrayLike<number>, b: ArrayLike<number>[] | ArrayLike<number>): number {
  const as = Array.isArray(a) ? a : [a as ArrayLike<number>];
  const bs = Array.isArray(b) ? b : [b as ArrayLike<number>];
  if (as.length !== bs.length) throw new Error(`relL2: ${as.length} tensors against ${bs.length}`);
  let num = 0, den = 0;
  as.forEach((x, j) => {
    const y = bs[j]!;
    if (x.length !== y.length) throw new Error(`relL2: tensor ${j} has ${x.length} values against ${y.length}`);
    for (let i = 0; i < y.length; i++) {
      num += (x[i]! - y[i]!) ** 2;
      den += y[i]! ** 2;
    }
  });
  return Math.sqrt(num / den);
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
