// Pixel comparison helpers for the annotator tests.
import assert from 'node:assert/strict';

/** Fraction of equal elements; fails on a length mismatch. */
export function equalFraction(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let eq = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) eq++;
  return eq / a.length;
}

/** Count of elements that differ by more than tol. */
export function countOver(a: ArrayLike<number>, b: ArrayLike<number>, tol: number): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i]! - b[i]!) <= tol)) n++;
  return n;
}

export function nonZero(a: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i]) n++;
  return n;
}

/** Channel 0 of an interleaved RGB buffer. */
export function firstChannel(rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array(rgb.length / 3);
  for (let i = 0; i < out.length; i++) out[i] = rgb[3 * i]!;
  return out;
}
