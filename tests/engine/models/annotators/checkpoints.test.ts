// Annotator networks built by our graph builder from their original checkpoint layouts (keys and shapes of
// controlnet_aux 0.0.10's modules), against those modules with the same pattern weights
// (tools/oracle/annotator_checkpoints.py): raw outputs before post-processing within 1e-4.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture } from '../../../support/fixtures.ts';
import { patternInput, patternSource, patternTensor } from '../../../support/pattern-weights.ts';
import { buildHed } from '../../../../src/engine/models/annotators/hed.ts';
import { buildLineart } from '../../../../src/engine/models/annotators/lineart.ts';
import type { GraphBuilder } from '../../../../src/engine/onnx/graph.ts';
import { encodeModel } from '../../../../src/engine/onnx/serialize.ts';
import { ort } from '../../../../src/engine/onnx/session.ts';
import type { WeightSource } from '../../../../src/engine/weights/types.ts';

const fx = loadFixture('annotators/checkpoints');
const TOL = 1e-4;

async function run(g: GraphBuilder, x: Float32Array, dims: number[]): Promise<Float32Array[]> {
  const s = await ort.InferenceSession.create(await encodeModel(g));
  try {
    const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', x, dims) });
    return s.outputNames.map((n) => out[n]!.data as Float32Array);
  } finally {
    await s.release();
  }
}

const BUILDERS: Record<string, (src: WeightSource) => GraphBuilder> = { hed: buildHed, lineart: buildLineart };

test('the pattern weights are the oracle\'s, bit for bit', () => {
  for (const name of Object.keys(BUILDERS)) {
    const [key, shape] = (fx.meta[name].keys as [string, number[]][])[0]!;
    assert.deepEqual(patternTensor(key, shape).subarray(0, 64), fx.f32(`${name}/w0`));
  }
});

for (const [name, build] of Object.entries(BUILDERS)) {
  test(`${name}: built from the checkpoint's keys, equal to controlnet_aux's module within ${TOL}`, async () => {
    const m = fx.meta[name] as { keys: [string, number[]][]; input: number[]; scale: number; outputs: number[][] };
    const outs = await run(build(patternSource(m.keys)), patternInput(m.input, m.scale), m.input);
    assert.equal(outs.length, m.outputs.length);
    outs.forEach((y, k) => {
      const ref = fx.f32(`${name}/${k}`);
      assert.equal(y.length, ref.length);
      let worst = 0, peak = 0;
      for (let i = 0; i < y.length; i++) { worst = Math.max(worst, Math.abs(y[i]! - ref[i]!)); peak = Math.max(peak, Math.abs(ref[i]!)); }
      assert.ok(peak > 1e-3, `output ${k} is not flat zero`);
      assert.ok(worst <= TOL, `${name} output ${k}: max |diff| ${worst} (max |ref| ${peak})`);
    });
  });

  test(`${name}: a checkpoint with an extra key or a missing one fails the build naming it`, () => {
    const m = fx.meta[name] as { keys: [string, number[]][] };
    assert.throws(() => build(patternSource([...m.keys, ['extra.weight', [1]]])), /not used.*extra\.weight/);
    assert.throws(() => build(patternSource(m.keys.slice(1))), new RegExp(`missing weight ${m.keys[0]![0].replace(/\./g, '\\.')}`));
  });
}
