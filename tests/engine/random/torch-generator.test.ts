import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture } from '../../support/fixtures.ts';
import { TorchGenerator, type Shape } from '../../../src/engine/random/torch-generator.ts';

const fx = loadFixture('random/noise');

/** Bit-for-bit comparison of two float32 arrays; reports the first differing index. */
function assertSameBits(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) assert.fail(`${what}: element ${i} is ${actual[i]}, torch has ${expected[i]}`);
  }
}

function draw(g: TorchGenerator, kind: string, shape: Shape): Float32Array {
  return kind === 'randn' ? g.randn(shape) : g.rand(shape);
}

test('randn/rand equal torch bit for bit for every seed and shape', () => {
  const cases = fx.meta.cases as { key: string; kind: string; seed: number; shape: number[] }[];
  assert.ok(cases.length >= 200);
  for (const c of cases) assertSameBits(draw(new TorchGenerator(c.seed), c.kind, c.shape), fx.f32(c.key), c.key);
});

test('a generator keeps its state (and the cached normal) across calls', () => {
  for (const s of fx.meta.sequences as { seed: number; steps: { key: string; kind: string; shape: number[] }[] }[]) {
    const g = new TorchGenerator(s.seed);
    for (const step of s.steps) assertSameBits(draw(g, step.kind, step.shape), fx.f32(step.key), step.key);
  }
});

test('manualSeed restarts the stream and drops the cached normal', () => {
  const g = new TorchGenerator(3);
  const first = g.randn([3]); // leaves a cached normal behind
  g.manualSeed(3);
  assertSameBits(g.randn([3]), first, 'reseeded');
});

test('rejects seeds outside 0..2^53-1', () => {
  assert.throws(() => new TorchGenerator(-1), RangeError);
  assert.throws(() => new TorchGenerator(1.5), RangeError);
  assert.throws(() => new TorchGenerator(2 ** 53), RangeError);
});
