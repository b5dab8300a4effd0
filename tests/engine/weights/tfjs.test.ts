import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeWeights } from '../../../src/engine/weights/tfjs.ts';

test('decodeWeights: float32, affine uint8/uint16 (min + q·scale) and float16, packed in manifest order', () => {
  const bytes = new Uint8Array(4 * 2 + 3 + 2 * 2 + 2 * 2);
  const v = new DataView(bytes.buffer);
  v.setFloat32(0, 1.5, true); v.setFloat32(4, -2, true);
  bytes.set([0, 10, 255], 8);
  v.setUint16(11, 0, true); v.setUint16(13, 1000, true);
  v.setUint16(15, 0x3c00, true); v.setUint16(17, 0xc000, true); // 1.0, -2.0 in IEEE half
  const w = decodeWeights([
    { name: 'a', shape: [2], dtype: 'float32' },
    { name: 'b', shape: [3], dtype: 'float32', quantization: { dtype: 'uint8', min: -1, scale: 0.5 } },
    { name: 'c', shape: [2], dtype: 'float32', quantization: { dtype: 'uint16', min: 2, scale: 0.001 } },
    { name: 'd', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' } },
  ], bytes);
  assert.deepEqual([...w.get('a')!.data], [1.5, -2]);
  assert.deepEqual([...w.get('b')!.data], [-1, 4, 126.5]);
  assert.deepEqual([...w.get('c')!.data].map((x) => Math.round(x * 1e4) / 1e4), [2, 3]);
  assert.deepEqual([...w.get('d')!.data], [1, -2]);
  assert.throws(() => decodeWeights([{ name: 'e', shape: [9], dtype: 'float32' }], bytes), /weight e lies beyond the shard data/);
});
