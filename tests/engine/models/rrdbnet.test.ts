// RRDBNet against basicsr's architecture (tools/oracle/rrdbnet.py) on tiny random weights: the x4plus layout from a
// Real-ESRGAN .pth (params_ema chosen over params), the x2plus layout (pixel-unshuffled input) from .safetensors.
// Tolerance: max abs error ≤ 1e-4 (a single network forward, DESIGN.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { buildRrdbNet, rrdbNetConfig } from '../../../src/engine/models/rrdbnet.ts';
import { openWeightsFile } from '../../../src/engine/weights/open.ts';
import { FIXTURES, loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { sessionFor } from './support.ts';

const fx = loadFixture('rrdbnet/outputs');

for (const [name, file] of [['x4', 'x4.pth'], ['x2', 'x2.safetensors']] as const) {
  test(`RRDBNet ${name} (${file}) equals basicsr`, async (t) => {
    const src = await openWeightsFile(join(FIXTURES, 'rrdbnet', file));
    const config = rrdbNetConfig(src);
    assert.deepEqual({ ...config }, {
      scale: fx.meta[name].scale, numInCh: 3, numOutCh: 3, numFeat: 8, numBlock: 2, numGrowCh: 4, prefix: name === 'x4' ? 'params_ema.' : '',
    });
    const session = await sessionFor(buildRrdbNet(src, config));
    const x = fx.get(`${name}.input`);
    const out = (await session.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape) })).output!;
    assert.deepEqual([...out.dims], fx.get(`${name}.output`).shape);
    const d = maxAbsDiff(out.data as Float32Array, fx.f32(`${name}.output`));
    t.diagnostic(`max abs error ${d.toExponential(2)}`);
    assert.ok(d <= 1e-4, `max abs error ${d}`);
  });
}

test('a file that is not an RRDBNet is refused by name', async () => {
  const src = await openWeightsFile(join(FIXTURES, 'pipeline', 'lora-a', 'lora.safetensors'));
  assert.throws(() => rrdbNetConfig(src), /not an RRDBNet \(ESRGAN \/ Real-ESRGAN\) checkpoint/);
});
