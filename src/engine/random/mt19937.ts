// The 32-bit Mersenne Twister exactly as torch's CPU generator runs it (at::mt19937): seeded with the low 32
// bits of the seed by the standard Knuth initialisation, one tempered 32-bit word per call.

const N = 624;
const M = 397;

export class Mt19937 {
  private readonly state = new Uint32Array(N);
  private index = N;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be an integer in 0..2^53-1, got ${seed}`);
    // torch keeps a 64-bit seed but initialises the twister from its low 32 bits only.
    let s = seed % 4294967296;
    this.state[0] = s;
    for (let i = 1; i < N; i++) {
      s = (Math.imul(1812433253, s ^ (s >>> 30)) + i) >>> 0;
      this.state[i] = s;
    }
  }

  private twist(): void {
    const st = this.state;
    for (let i = 0; i < N; i++) {
      const y = (st[i]! & 0x80000000) | (st[(i + 1) % N]! & 0x7fffffff);
      st[i] = st[(i + M) % N]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.index = 0;
  }

  /** Next tempered output, an integer in 0..2^32-1. */
  nextUint32(): number {
    if (this.index >= N) this.twist();
    let y = this.state[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }
}
