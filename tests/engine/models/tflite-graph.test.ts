// The TFLite importer (weights/tflite.ts + models/tflite-graph.ts) on the real MediaPipe models bundled via
// npm, against Google's LiteRT interpreter (tools/oracle/tflite_models.py). Every output within
// max(1e-4, 2 x spread), where spread is how far LiteRT's own three kernel sets (builtin, XNNPACK, reference)
// differ from each other on that output and input: float32 summation order alone moves outputs of magnitude
// 100-1500 by more than 1e-4 (LiteRT's XNNPACK and builtin kernels differ by up to 0.57 on pose_landmark_full's
// segmentation logits). Our graph is a fourth summation order, hence twice the spread; a translation error (a
// wrong pad, layout or weight) shows as differences of order 1 or more.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { FIXTURES, loadFixture } from '../../support/fixtures.ts';
import { mediapipeModelBytes, mediapipeSession, releaseMediapipeSessions, type MediapipeModelName } from '../../../src/engine/annotators/mediapipe-models.ts';
import { ort } from '../../../src/engine/onnx/session.ts';
import { readTflite } from '../../../src/engine/weights/tflite.ts';

const fx = loadFixture('annotators/tflite_models');
const STRIDE = fx.meta.stride as number, LIMIT = fx.meta.limit as number;
const TOL = 1e-4;

after(releaseMediapipeSessions);

async function photo(): Promise<Uint8Array> {
  const { data } = await sharp(readFileSync(join(FIXTURES, 'photos/astronaut-256.png'))).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

function inputs(shape: number[], range: [number, number], img: Uint8Array): Record<'pattern' | 'photo', Float32Array> {
  const n = shape.reduce((a, b) => a * b, 1);
  const pattern = new Float32Array(n);
  for (let i = 0; i < n; i++) pattern[i] = ((i * 7919 + 13) % 2001) / 1000 - 1;
  const S = shape[1]!, [lo, hi] = range;
  const k = Math.fround((hi - lo) / 255);
  const ph = new Float32Array(n);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) {
    const sy = Math.floor((y * 256) / S), sx = Math.floor((x * 256) / S);
    ph[(y * S + x) * 3 + c] = Math.fround(Math.fround(img[(sy * 256 + sx) * 3 + c]! * k) + lo);
  }
  return { pattern, photo: ph };
}

const MODELS: MediapipeModelName[] = ['face_detection_short_range', 'face_detection_full_range_sparse', 'face_landmark', 'pose_detection', 'pose_landmark_lite', 'pose_landmark_full'];

test('the TFLite reader sees the operators, inputs and outputs of each bundled model', () => {
  const m = readTflite(mediapipeModelBytes('pose_detection'));
  const count = (op: string) => m.operators.filter((o) => o.op === op).length;
  assert.equal(m.operators.length, 291);
  assert.equal(count('DENSIFY'), 38);
  assert.equal(count('DEQUANTIZE'), 144);
  assert.deepEqual(m.tensors[m.inputs[0]!]!.shape, [1, 224, 224, 3]);
  assert.deepEqual(m.outputs.map((i) => m.tensors[i]!.shape), [[1, 2254, 12], [1, 2254, 1]]);
  assert.equal(m.tensors.filter((t) => t.sparsity).length, 38);
  assert.throws(() => readTflite(new Uint8Array(16)), /not a TFLite model/);
});

for (const name of MODELS) {
  test(`${name}: the imported ONNX graph equals LiteRT within max(1e-4, 2 x LiteRT's own kernel spread) on every output`, async () => {
    const meta = fx.meta[name] as { input: number[]; outputs: string[]; range: [number, number] };
    const session = await mediapipeSession(name);
    const xs = inputs(meta.input, meta.range, await photo());
    for (const kind of ['pattern', 'photo'] as const) {
      const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', xs[kind], meta.input) });
      assert.deepEqual(session.outputNames, meta.outputs);
      meta.outputs.forEach((o, k) => {
        let y = out[o]!.data as Float32Array;
        if (y.length > LIMIT) y = y.filter((_, i) => i % STRIDE === 0);
        const ref = fx.f32(`${name}/${kind}/${k}`);
        assert.equal(y.length, ref.length, `${o} length`);
        const tol = Math.max(TOL, 2 * fx.f32(`${name}/${kind}/${k}/spread`)[0]!);
        let worst = 0, peak = 0;
        for (let i = 0; i < y.length; i++) { worst = Math.max(worst, Math.abs(y[i]! - ref[i]!)); peak = Math.max(peak, Math.abs(ref[i]!)); }
        assert.ok(peak > 0, `${o} is not all zero`);
        assert.ok(worst <= tol, `${name} ${kind} ${o}: max |diff| ${worst} > ${tol} (max |ref| ${peak})`);
      });
    }
  });
}
