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

test('mapped source takes row ranges (the q / k / v thirds of a fused in_proj), raw and float32, with their own fingerprints', async () => {
  const bytes = new Uint8Array(new Uint16Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]).buffer);
  const src = new MemorySource(new Map([['in_proj', { dtype: 'float16', shape: [6, 2], bytes }]]));
  const third = (j: number) => new MappedSource(new Map([['p', { source: src, name: 'in_proj', rows: [2 * j, 2 * j + 2] as [number, number] }]]));
  assert.deepEqual(third(1).info('p'), { dtype: 'float16', shape: [2, 2] });
  const raw = await third(2).readRaw('p');
  assert.deepEqual([raw.shape, Array.from(new Uint16Array(raw.bytes.buffer, raw.bytes.byteOffset, 4))], [[2, 2], [9, 10, 11, 12]]);
  const f = await third(1).readF32('p');
  assert.equal(f.length, 4);
  assert.deepEqual(Array.from(f), Array.from(await src.readF32('in_proj')).slice(4, 8));
  assert.notEqual(third(0).fingerprint(), third(1).fingerprint());
  assert.throws(() => new MappedSource(new Map([['bad', { source: src, name: 'in_proj', rows: [4, 8] as [number, number] }]])), /cannot take rows 4\.\.8 of in_proj \[6,2\]/);
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
