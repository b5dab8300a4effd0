// Single-precision log and sin/cos as torch's AVX2 normal sampler evaluates them (Cephes polynomials, the
// algorithm of avx_mathfun.h). torch.randn on CPU uses these, not libm, so reproducing its bits needs the
// same float32 operation sequence: every intermediate is rounded to float32 with Math.fround, and where the
// compiler contracted a multiply feeding an add into one FMA instruction (GCC's default -ffp-contract=fast
// with -mfma), we do a single-rounding FMA too. Which pairs are fused was measured against torch: a product
// is fused into the add that immediately consumes it.

const f = Math.fround;
const buf = new ArrayBuffer(4);
const asFloat = new Float32Array(buf);
const asUint = new Uint32Array(buf);

function bitsOf(x: number): number {
  asFloat[0] = x;
  return asUint[0]!;
}
function fromBits(b: number): number {
  asUint[0] = b >>> 0;
  return asFloat[0]!;
}

/** Fused multiply-add in float32 (one rounding), as the compiler emits for a*b+c in torch's AVX2 build. */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b; // exact: two 24-bit significands fit in a double
  const s = p + c;
  // TwoSum: the exact value is s + err.
  const bb = s - p;
  const err = (p - (s - bb)) + (c - bb);
  const r = f(s);
  if (err === 0 || r === s) return r;
  // Rounding s to float32 is only wrong when s sits exactly halfway between two floats.
  const other = s > r ? nextFloat(r, 1) : nextFloat(r, -1);
  if ((r + other) / 2 !== s) return r;
  return err > 0 ? Math.max(r, other) : Math.min(r, other);
}

function nextFloat(x: number, dir: 1 | -1): number {
  if (x === 0) return dir * fromBits(1);
  const b = bitsOf(x);
  return fromBits(x > 0 === dir > 0 ? b + 1 : b - 1);
}

const MIN_NORM_POS = fromBits(0x00800000);
const SQRTHF = f(0.707106781186547524);
const LOG_P = [
  7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
  2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(f);
const LOG_Q1 = f(-2.12194440e-4);
const LOG_Q2 = f(0.693359375);

/** Natural log of a positive float32 (NaN for x <= 0), bit-identical to log256_ps. */
export function logF32(xIn: number): number {
  if (!(xIn > 0)) return NaN;
  let x = Math.max(f(xIn), MIN_NORM_POS);
  const bits = bitsOf(x);
  // Split x = m * 2^e with m in [0.5, 1).
  let e = f(((bits >>> 23) - 0x7f) + 1);
  x = fromBits((bits & ~0x7f800000) | 0x3f000000);
  if (x < SQRTHF) {
    e = f(e - 1);
    x = f(f(x - 1) + x);
  } else {
    x = f(x - 1);
  }
  const z = f(x * x);
  let y = LOG_P[0]!;
  for (let i = 1; i < LOG_P.length; i++) y = fmaF32(y, x, LOG_P[i]!);
  y = f(y * x);
  y = fmaF32(y, z, f(e * LOG_Q1));
  y = fmaF32(-z, 0.5, y);
  x = f(x + y);
  return fmaF32(e, LOG_Q2, x);
}

const FOPI = f(1.27323954473516); // 4 / pi
const DP1 = f(-0.78515625);
const DP2 = f(-2.4187564849853515625e-4);
const DP3 = f(-3.77489497744594108e-8);
const SIN_P = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f);
const COS_P = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f);

function negate(v: number, flip: boolean): number {
  return flip ? -v : v;
}

/** [sin(x), cos(x)] of a float32, bit-identical to sincos256_ps (accurate for |x| < 8192). */
export function sinCosF32(xIn: number): [number, number] {
  let x = Math.abs(f(xIn));
  const negative = xIn < 0;
  // Octant j (made even) and the reduced argument x - j*pi/4 in three float32 pieces.
  let j = Math.trunc(f(x * FOPI)) | 0;
  j = (j + 1) & ~1;
  const y = f(j);
  x = fmaF32(y, DP1, x);
  x = fmaF32(y, DP2, x);
  x = fmaF32(y, DP3, x);
  const flipSin = negative !== ((j & 4) !== 0);
  const flipCos = (~(j - 2) & 4) !== 0;
  const useSinPoly = (j & 2) === 0;

  const z = f(x * x);
  let c = COS_P[0]!;
  c = fmaF32(c, z, COS_P[1]!);
  c = fmaF32(c, z, COS_P[2]!);
  c = f(c * z);
  c = fmaF32(c, z, -f(z * 0.5));
  c = f(c + 1);

  let s = SIN_P[0]!;
  s = fmaF32(s, z, SIN_P[1]!);
  s = fmaF32(s, z, SIN_P[2]!);
  s = f(s * z);
  s = fmaF32(s, x, x);

  // The vector code selects with bit masks and adds a +0 to the chosen value, which turns -0 into +0.
  const sinV = (useSinPoly ? s : c) + 0;
  const cosV = (useSinPoly ? c : s) + 0;
  return [negate(sinV, flipSin), negate(cosV, flipCos)];
}
