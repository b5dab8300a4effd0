// Choosing the next token from a causal LM's logits: greedy (argmax, transformers' do_sample=False) or sampling
// after transformers' warpers in generate()'s order (TemperatureLogitsWarper, TopKLogitsWarper,
// TopPLogitsWarper), drawn with our own seeded generator (the request's seed: the same seed gives the same text;
// torch.multinomial's stream is not reproduced).
import { Mt19937 } from '../random/mt19937.ts';

export interface SamplingSettings {
  /** Divides the logits (transformers' temperature); 1 = unchanged. Must be > 0. */
  temperature: number;
  /** Keep the k most likely tokens (ties at the k-th value kept, as torch.topk's threshold does); 0 = off. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose probabilities sum to at least topP; 1 = off. */
  topP: number;
}

/** The index of the largest logit (the first one on ties, as torch.argmax). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/**
 * The probabilities generate(do_sample=True) samples from: softmax of the logits after the temperature, top-k and
 * top-p warpers (filtered tokens get probability 0). Follows transformers 5's warpers: top-k keeps every logit >=
 * the k-th largest; top-p sorts ascending and removes the tokens whose cumulative probability is <= 1 - topP,
 * always keeping the most likely one. Throws RangeError for a temperature <= 0 or topP outside (0, 1].
 */
export function warpedProbabilities(logits: ArrayLike<number>, s: SamplingSettings): Float64Array {
  if (!(s.temperature > 0)) throw new RangeError(`temperature must be > 0 (got ${s.temperature})`);
  if (!(s.topP > 0 && s.topP <= 1)) throw new RangeError(`top_p must be in (0, 1] (got ${s.topP})`);
  const n = logits.length;
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = logits[i]! / s.temperature;
  const keep = new Uint8Array(n).fill(1);
  if (s.topK > 0 && s.topK < n) {
    const kth = Float64Array.from(x).sort().reverse()[s.topK - 1]!;
    for (let i = 0; i < n; i++) if (x[i]! < kth) keep[i] = 0;
  }
  const probs = softmax(x, keep);
  if (s.topP < 1) {
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => probs[a]! - probs[b]! || a - b);
    let cum = 0;
    for (let r = 0; r < n - 1; r++) {
      cum += probs[order[r]!]!;
      if (cum <= 1 - s.topP) keep[order[r]!] = 0;
    }
    return softmax(x, keep);
  }
  return probs;
}

function softmax(x: Float64Array, keep: Uint8Array): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (keep[i] && x[i]! > max) max = x[i]!;
  const out = new Float64Array(x.length);
  let sum = 0;
  for (let i = 0; i < x.length; i++) if (keep[i]) sum += out[i] = Math.exp(x[i]! - max);
  for (let i = 0; i < x.length; i++) out[i]! /= sum;
  return out;
}

/** A seeded source of uniform numbers in [0, 1) (53 bits from two Mersenne Twister words). */
export class SeededUniform {
  private readonly mt: Mt19937;
  constructor(seed: number) {
    this.mt = new Mt19937(seed);
  }

  next(): number {
    const hi = this.mt.nextUint32() >>> 5;
    const lo = this.mt.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

/** The token whose cumulative-probability interval holds u (u in [0, 1)); the last kept token on rounding. */
export function drawToken(probs: Float64Array, u: number): number {
  let cum = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i]! <= 0) continue;
    last = i;
    cum += probs[i]!;
    if (u < cum) return i;
  }
  return last;
}
