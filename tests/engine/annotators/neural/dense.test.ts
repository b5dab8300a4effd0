import { test } from 'node:test';
import assert from 'node:assert/strict';
import { depthInputSize, multipleOf } from '../../../../src/engine/annotators/neural/dense.ts';

test('Depth Anything input size follows DPTImageProcessor (518, keep aspect, multiple of 14)', () => {
  assert.deepEqual(depthInputSize(512, 512), { w: 518, h: 518 });
  assert.deepEqual(depthInputSize(768, 512), { w: 784, h: 518 }); // scale 518/512 is closer to 1
  assert.deepEqual(depthInputSize(384, 256), { w: 518, h: 350 }); // small image: 518/384 is closer to 1
  assert.equal(multipleOf(3, 14), 14);
});
