import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MappedSource, MemorySource, mergedSources, prefixedView, renamedView } from '../../../src/engine/weights/views.ts';

const mem = (t: Record<string, number[]>) =>
  MemorySource.fromF32(Object.fromEntries(Object.entries(t).map(([k, v]) => [k, { shape: [v.length], data: Float32Array.from(v) }])));

test('prefixed view strips the prefix and hides other keys', async () => {
  const src = mem({ 'state_dict.a': [1], 'state_dict.b.c': [2, 3], other: [4] });
  const v = prefixedView(src, 'state_dict.');
  assert.deepEqual(v.keys(), ['a', 'b.c']);
  assert.deepEqual(Array.from(await v.readF32('b.c')), [2, 3]);
  assert.equal(v.info('other'), undefined);
  await assert.rejects(v.readF32('other'), /no weight named other/);
});

test('renamed view refuses two names mapping to one', () => {
  const src = mem({ a: [1], b: [2] });
  assert.throws(() => renamedView(src, () => 'x'), /both a and b map to x/);
});

test('mapped source reshapes and checks element counts', async () => {
  const src = MemorySource.fromF32({ k: { shape: [2, 3, 1, 1], data: Float32Array.from([1, 2, 3, 4, 5, 6]) } });
  const m = new MappedSource(new Map([['lin', { source: src, name: 'k', shape: [2, 3] }]]));
  assert.deepEqual(m.info('lin'), { dtype: 'float32', shape: [2, 3] });
  assert.deepEqual((await m.readRaw('lin')).shape, [2, 3]);
  assert.deepEqual(Array.from(await m.readF32('lin')), [1, 2, 3, 4, 5, 6]);
  assert.throws(() => new MappedSource(new Map([['bad', { source: src, name: 'k', shape: [5] }]])), /cannot view k/);
  assert.throws(() => new MappedSource(new Map([['gone', { source: src, name: 'nope' }]])), /weight nope \(for gone\) is not in its source/);
});

test('merged sources union shards and reject duplicates; fingerprints follow content and names', () => {
  const a = mem({ x: [1] });
  const b = mem({ y: [2] });
  assert.deepEqual(mergedSources([a, b]).keys(), ['x', 'y']);
  assert.throws(() => mergedSources([a, mem({ x: [3] })]), /weight x appears in more than one file/);
  assert.equal(mergedSources([a, b]).fingerprint(), mergedSources([a, b]).fingerprint());
  assert.notEqual(mergedSources([a, b]).fingerprint(), mergedSources([a, mem({ y: [5] })]).fingerprint());
  assert.notEqual(renamedView(a, () => 'p').fingerprint(), renamedView(a, () => 'q').fingerprint());
});
