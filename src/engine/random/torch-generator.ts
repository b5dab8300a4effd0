// torch.Generator("cpu").manual_seed(seed) followed by torch.randn / torch.rand, bit for bit (torch 2.x on an
// x86-64 CPU with AVX2, which is what diffusers' CPU generator runs on). State persists across calls, so a
// scheduler drawing noise step after step gets the same stream as diffusers does with one generator.
import { Mt19937 } from './mt19937.ts';
import { logF32, sinCosF32 } from './cephes-f32.ts';

const f = Math.fround;
const TWO_POW_24 = 16777216;
const TWO_POW_53 = 9007199254740992;
const TWO_PI_F32 = f(2 * Math.PI);

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`bad shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

export class TorchGenerator {
  private engine: Mt19937;
  /** Second Box-Muller value of the scalar (double) path, which torch caches in the generator. */
  private cachedNormal: number | null = null;
  private seedValue: number;

  constructor(seed: number) {
    this.seedValue = seed;
    this.engine = new Mt19937(seed);
  }

  /** Like Generator.manual_seed: resets the twister and the cached normal. */
  manualSeed(seed: number): this {
    this.seedValue = seed;
    this.engine = new Mt19937(seed);
    this.cachedNormal = null;
    return this;
  }

  initialSeed(): number {
    return this.seedValue;
  }

  /** uniform_real_distribution<float>(0, 1): 24 random bits of one 32-bit draw. */
  private uniformF32(): number {
    return (this.engine.nextUint32() & 0xffffff) / TWO_POW_24;
  }

  /** uniform_real_distribution<double>(0, 1): 53 bits of a 64-bit draw (first word is the high half). */
  private uniformF64(): number {
    const hi = this.engine.nextUint32();
    const lo = this.engine.nextUint32();
    return ((hi & 0x1fffff) * 4294967296 + lo) / TWO_POW_53;
  }

  /** normal_distribution<double>: Box-Muller on doubles, caching the sine half for the next call. */
  private normalF64(): number {
    if (this.cachedNormal !== null) {
      const v = this.cachedNormal;
      this.cachedNormal = null;
      return v;
    }
    const u1 = this.uniformF64();
    const u2 = this.uniformF64();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.cachedNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** torch.rand(shape, generator, dtype=float32). */
  rand(shape: Shape): Float32Array {
    const out = new Float32Array(numel(shape));
    for (let i = 0; i < out.length; i++) out[i] = this.uniformF32();
    return out;
  }

  /** torch.randn(shape, generator, dtype=float32). */
  randn(shape: Shape): Float32Array {
    const n = numel(shape);
    const out = new Float32Array(n);
    if (n < 16) {
      // Small tensors take the serial path: one double normal per element, cast to float32.
      for (let i = 0; i < n; i++) out[i] = this.normalF64();
      return out;
    }
    // Vectorised path: all uniforms first, then Box-Muller within each chunk of 16 (first 8 values are
    // the radii's sources, last 8 the angles'); a ragged tail redraws and recomputes the last 16 values.
    for (let i = 0; i < n; i++) out[i] = this.uniformF32();
    for (let i = 0; i + 16 <= n; i += 16) boxMuller16(out, i);
    if (n % 16 !== 0) {
      const start = n - 16;
      for (let i = 0; i < 16; i++) out[start + i] = this.uniformF32();
      boxMuller16(out, start);
    }
    return out;
  }
}

function boxMuller16(data: Float32Array, at: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = f(1 - data[at + j]!); // [0, 1) -> (0, 1] for the log
    const u2 = data[at + j + 8]!;
    const radius = f(Math.sqrt(f(-2 * logF32(u1))));
    const [s, c] = sinCosF32(f(TWO_PI_F32 * u2));
    data[at + j] = f(radius * c);
    data[at + j + 8] = f(radius * s);
  }
}
