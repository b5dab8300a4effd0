import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bfloat16ToFloat32, float16ToFloat32, float32ToFloat16 } from '../../../src/engine/weights/dtype.ts';

test('float16 → float32 is exact for every bit pattern and float32 → float16 inverts it', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const f = float16ToFloat32(all);
  assert.equal(f[0x3c00], 1);
  assert.equal(f[0x7bff], 65504);
  assert.equal(f[0x0001], 2 ** -24);
  assert.ok(Object.is(f[0x8000], -0));
  assert.equal(f[0xfc00], -Infinity);
  assert.ok(Number.isNaN(f[0x7e00]));
  const back = float32ToFloat16(f);
  for (let i = 0; i < 65536; i++) {
    if (Number.isNaN(f[i])) assert.ok(Number.isNaN(float16ToFloat32(back.subarray(i, i + 1))[0]));
    else assert.equal(back[i], i, `pattern 0x${i.toString(16)}`);
  }
});

test('float32 → float16 rounds to nearest even, overflows to inf, underflows to subnormal/zero', () => {
  const h = float32ToFloat16(new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 1e-8, 3e-8, -1e-10, 0.1]));
  assert.deepEqual(Array.from(h), [0x3c00, 0x3c02, 0x7c00, 0x0000, 0x0001, 0x8000, 0x2e66]);
});

test('bfloat16 is the top half of float32', () => {
  assert.deepEqual(Array.from(bfloat16ToFloat32(new Uint16Array([0x3f80, 0xc049, 0x0000]))), [1, -3.140625, 0]);
});
