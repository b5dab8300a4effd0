// Our TF.js reader + Keras graph builder against TensorFlow.js itself (the reference implementation of these
// files: @tensorflow/tfjs 4.11, CPU backend) on the two embedded models: same outputs within float32 rounding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import * as tf from '@tensorflow/tfjs';
import { buildKerasGraph } from '../../../src/engine/models/keras.ts';
import { readTfjsBundledModel, readTfjsLayersModel, type TfjsLayersModel } from '../../../src/engine/weights/tfjs.ts';
import { ESRGAN_SLIM, NSFWJS_MOBILENET_V2 } from '../../../src/engine/extras/embedded.ts';
import { sessionFor } from './support.ts';
import ort from 'onnxruntime-node';

await tf.setBackend('cpu');

/** A deterministic NHWC image in [0, scale). */
function image(h: number, w: number, scale: number): Float32Array {
  let s = 12345;
  return Float32Array.from({ length: h * w * 3 }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * scale);
}

const toNchw = (x: Float32Array, h: number, w: number, c: number): Float32Array => {
  const out = new Float32Array(x.length);
  for (let y = 0; y < h; y++) for (let i = 0; i < w; i++) for (let k = 0; k < c; k++) out[(k * h + y) * w + i] = x[(y * w + i) * c + k]!;
  return out;
};

async function compare(ours: TfjsLayersModel, ref: tf.LayersModel, h: number, w: number, scale: number): Promise<{ maxAbs: number; maxRef: number }> {
  const session = await sessionFor(buildKerasGraph(ours));
  const x = image(h, w, scale);
  const o = (await session.run({ input: new ort.Tensor('float32', toNchw(x, h, w, 3), [1, 3, h, w]) })).output!;
  const r = ref.predict(tf.tensor4d(x, [1, h, w, 3])) as tf.Tensor;
  const rd = r.dataSync() as Float32Array;
  const refNchw = r.shape.length === 4 ? toNchw(rd, r.shape[1]!, r.shape[2]!, r.shape[3]!) : rd;
  assert.deepEqual([...o.dims], r.shape.length === 4 ? [1, r.shape[3], r.shape[1], r.shape[2]] : r.shape);
  let maxAbs = 0, maxRef = 0;
  refNchw.forEach((v, i) => { maxAbs = Math.max(maxAbs, Math.abs((o.data as Float32Array)[i]! - v)); maxRef = Math.max(maxRef, Math.abs(v)); });
  return { maxAbs, maxRef };
}

test('esrgan-slim x2 (RDN, float32 weights) equals TF.js: relative error ≤ 1e-5 of the output range', async (t) => {
  const path = ESRGAN_SLIM.modelJson(2);
  const mj = JSON.parse(readFileSync(path, 'utf8'));
  const bin = readFileSync(path.replace('model.json', 'group1-shard1of1.bin'));
  const ref = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: mj.modelTopology, weightSpecs: mj.weightsManifest[0].weights, weightData: new Uint8Array(bin).buffer }));
  const ours = await readTfjsLayersModel(path);
  assert.equal([...ours.weights.values()].reduce((s, w) => s + w.data.length, 0), 222_075, 'the package meta\'s parameter count');
  const { maxAbs, maxRef } = await compare(ours, ref, 20, 28, 255);
  t.diagnostic(`max abs error ${maxAbs.toExponential(2)} on outputs up to ${maxRef.toFixed(1)}`);
  assert.ok(maxRef > 100, 'the output is not trivially small');
  assert.ok(maxAbs <= 1e-5 * maxRef, `max abs error ${maxAbs}`);
});

test('nsfwjs MobileNetV2 (uint8-quantised, in JS bundles) equals TF.js: probabilities within 1e-5', async (t) => {
  const f = NSFWJS_MOBILENET_V2.files();
  const ev = (file: string): any => { const module = { exports: {} }; runInNewContext(readFileSync(file, 'utf8'), { module, exports: module.exports }); return module.exports; };
  const mj = JSON.parse(JSON.stringify(ev(f.model)));
  const bin = Buffer.from(ev(f.shards[0]!), 'base64');
  const ref = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: mj.modelTopology, weightSpecs: mj.weightsManifest[0].weights, weightData: new Uint8Array(bin).buffer }));
  const ours = await readTfjsBundledModel(f.model, f.shards);
  assert.equal([...ours.weights.values()].reduce((s, w) => s + w.data.length, 0), 2_619_461);
  const { maxAbs } = await compare(ours, ref, 224, 224, 1);
  t.diagnostic(`max abs error ${maxAbs.toExponential(2)}`);
  assert.ok(maxAbs <= 1e-5, `max abs error ${maxAbs}`);
});

test('a layer the builder does not cover is refused by name', () => {
  const m: TfjsLayersModel = {
    model: { name: 'm', input_layers: [['in', 0, 0]], output_layers: [['x', 0, 0]], layers: [
      { class_name: 'InputLayer', name: 'in', config: { batch_input_shape: [null, null, null, 3] }, inbound_nodes: [] },
      { class_name: 'LSTM', name: 'x', config: {}, inbound_nodes: [[['in', 0, 0, {}]]] },
    ] },
    weights: new Map(),
  };
  assert.throws(() => buildKerasGraph(m), /layer x: LSTM layers are not supported/);
});
