// Elementwise float32 helpers for the denoising loop, rounding each operation to float32 as torch does.
const f = Math.fround;

/** Concatenates along the batch axis (torch.cat([a, b])). */
export function cat(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Repeats a tensor `times` along the batch axis. */
export function repeat(a: Float32Array, times: number): Float32Array {
  return cat(...Array.from({ length: times }, () => a));
}

/** uncond + scale * (text - uncond) on the two halves of a CFG batch. */
export function guidance(pred: Float32Array, scale: number): Float32Array {
  const half = pred.length / 2;
  const out = new Float32Array(half);
  const s = f(scale);
  for (let i = 0; i < half; i++) {
    const u = pred[i]!;
    out[i] = f(u + f(s * f(pred[half + i]! - u)));
  }
  return out;
}

/** a += b in place. */
export function addInto(a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) a[i] = f(a[i]! + b[i]!);
}

export function scale(a: Float32Array, s: number): Float32Array {
  const out = new Float32Array(a.length);
  const k = f(s);
  for (let i = 0; i < a.length; i++) out[i] = f(a[i]! * k);
  return out;
}

export function divide(a: Float32Array, s: number): Float32Array {
  const out = new Float32Array(a.length);
  const k = f(s);
  for (let i = 0; i < a.length; i++) out[i] = f(a[i]! / k);
  return out;
}

/** mean + std * eps (DiagonalGaussianDistribution.sample). */
export function gaussianSample(mean: Float32Array, std: Float32Array, eps: Float32Array): Float32Array {
  const out = new Float32Array(mean.length);
  for (let i = 0; i < out.length; i++) out[i] = f(mean[i]! + f(std[i]! * eps[i]!));
  return out;
}

/** (1 - mask) * a + mask * b, with mask [h*w] broadcast over batch and channels. */
export function blendByMask(a: Float32Array, b: Float32Array, mask: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  const plane = mask.length;
  for (let i = 0; i < out.length; i++) {
    const m = mask[i % plane]!;
    out[i] = f(f(f(1 - m) * a[i]!) + f(m * b[i]!));
  }
  return out;
}
