import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, loadFixture } from '../../support/fixtures.ts';
import { encodeSafetensors, openSafetensors, writeSafetensors } from '../../../src/engine/weights/safetensors.ts';

const sameValues = (a: Float32Array, b: Float32Array) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]) || (Number.isNaN(a[i]) && Number.isNaN(b[i])), `element ${i}: ${a[i]} vs ${b[i]}`);
};

test('reads every dtype written by the safetensors library, upcast exactly to float32', async () => {
  const st = await openSafetensors(join(FIXTURES, 'weights', 'dtypes.safetensors'));
  const fx = loadFixture('weights/dtypes');
  assert.deepEqual(st.keys().sort(), Object.keys(fx.tensors).sort());
  assert.deepEqual(st.metadata, { format: 'pt' });
  const dtypes: Record<string, string> = { f32: 'float32', f16: 'float16', bf16: 'bfloat16', f64: 'float64', i64: 'int64', i32: 'int32', i8: 'int8', u8: 'uint8', bool: 'bool', scalar: 'float32' };
  for (const key of st.keys()) {
    assert.equal(st.info(key)!.dtype, dtypes[key]);
    // (the fixture format stores a 0-d tensor as shape [1])
    assert.deepEqual(st.info(key)!.shape, key === 'scalar' ? [] : fx.get(key).shape);
    sameValues(await st.readF32(key), fx.f32(key));
  }
});

test('writer round-trips through the reader; raw bytes stay unconverted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'st-'));
  const path = join(dir, 'a.safetensors');
  const w = new Float32Array([1, 2, 3, 4, 5, 6]);
  const h = new Uint16Array([0x3c00, 0xc000]); // fp16 1, -2
  await writeSafetensors(path, { w: { dtype: 'float32', shape: [2, 3], data: w }, h: { dtype: 'float16', shape: [2], data: h } }, { kind: 'demo' });
  assert.deepEqual(readFileSync(path), encodeSafetensors({ w: { dtype: 'float32', shape: [2, 3], data: w }, h: { dtype: 'float16', shape: [2], data: h } }, { kind: 'demo' }));
  const st = await openSafetensors(path);
  assert.equal(readFileSync(path).readUInt32LE(0) % 8, 0); // data section 8-byte aligned
  assert.deepEqual(st.info('w'), { dtype: 'float32', shape: [2, 3] });
  assert.deepEqual(Array.from(await st.readF32('w')), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(await st.readF32('h')), [1, -2]);
  const raw = await st.readRaw('h');
  assert.deepEqual(Array.from(new Uint16Array(raw.bytes.buffer, raw.bytes.byteOffset, 2)), [0x3c00, 0xc000]);
  assert.deepEqual(st.metadata, { kind: 'demo' });
  await assert.rejects(st.readF32('missing'), /no tensor named missing/);
  assert.throws(() => encodeSafetensors({ bad: { dtype: 'float32', shape: [4], data: new Float32Array(3) } }), /12 bytes do not match float32\[4\]/);
});

test('fingerprint depends on the header and size, and is stable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'st-'));
  const a = join(dir, 'a.safetensors');
  const b = join(dir, 'b.safetensors');
  await writeSafetensors(a, { x: { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) } });
  await writeSafetensors(b, { x: { dtype: 'float32', shape: [1, 2], data: new Float32Array([1, 2]) } });
  assert.equal((await openSafetensors(a)).fingerprint(), (await openSafetensors(a)).fingerprint());
  assert.notEqual((await openSafetensors(a)).fingerprint(), (await openSafetensors(b)).fingerprint());
});

test('corrupt files give clear errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'st-'));
  const junk = join(dir, 'junk.safetensors');
  writeFileSync(junk, Buffer.from('not a safetensors file at all'));
  await assert.rejects(openSafetensors(junk), /not a safetensors file/);
  const good = encodeSafetensors({ x: { dtype: 'float32', shape: [4], data: new Float32Array(4) } });
  const cut = join(dir, 'cut.safetensors');
  writeFileSync(cut, good.subarray(0, good.length - 4));
  await assert.rejects(openSafetensors(cut), /tensor x lies outside the file/);
});
