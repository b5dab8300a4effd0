// MiDaS DPT-Hybrid (the depth annotator) built by our graph builder from the checkpoint's keys, against
// controlnet_aux 0.0.10's DPTDepthModel with timm 1.0.31 and the same pattern weights (tools/oracle/annotator_midas.py):
// a narrow variant with the real key set (every test run), the full-size layout (opt-in: 2.6 GB, ~20 s), and
// MidasDetector's whole hint through auto_hint with the checkpoint in a models folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnnotatorMissingError, annotate, annotatorStatus, releaseAnnotatorSessions } from '../../../../src/engine/annotators/index.ts';
import { EngineError } from '../../../../src/engine/errors.ts';
import { buildMidasDpt, standardizeKernel } from '../../../../src/engine/models/annotators/midas.ts';
import { encodeModel } from '../../../../src/engine/onnx/serialize.ts';
import { ort } from '../../../../src/engine/onnx/session.ts';
import { writeSafetensors } from '../../../../src/engine/weights/safetensors.ts';
import { loadFixture } from '../../../support/fixtures.ts';
import { patternInput, patternSource, patternTensor, patternValue } from '../../../support/pattern-weights.ts';

const fx = loadFixture('annotators/midas');
type Case = { keys: [string, number[]][]; input: number[]; scale: number; offset: number; outputs: number[][]; torch_float32_error: number };
const u8 = (key: string) => fx.get(key).data as Uint8Array;
const narrow = fx.meta.narrow as Case;
const full = fx.meta.full as Case;
/**
 * The output is a relative inverse depth that the detector min-max normalises, so the bound is 1e-4 of its range:
 * in absolute terms the narrow network's float32 rounding alone is 1.1e-4 (torch float32 vs float64, recorded by the
 * oracle), from the zero-mean standardized kernels of the 9-block ResNet stage cancelling its growing residual stream.
 */
const REL_TOL = 1e-4;

async function runDepth(c: Case): Promise<{ worst: number; peak: number }> {
  const s = await ort.InferenceSession.create(await encodeModel(buildMidasDpt(patternSource(c.keys))));
  try {
    const x = patternInput(c.input, c.scale).map((v) => v + c.offset);
    const out = (await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', x, c.input) }))[s.outputNames[0]!]!;
    assert.deepEqual(out.dims, c.outputs[0]);
    return compare(out.data as Float32Array, fx.f32(c === narrow ? 'narrow/0' : 'full/0'));
  } finally {
    await s.release();
  }
}

function compare(y: Float32Array, ref: Float32Array): { worst: number; peak: number } {
  assert.equal(y.length, ref.length);
  let worst = 0, peak = 0;
  for (let i = 0; i < y.length; i++) { worst = Math.max(worst, Math.abs(y[i]! - ref[i]!)); peak = Math.max(peak, Math.abs(ref[i]!)); }
  return { worst, peak };
}

test('the narrow variant has the real checkpoint\'s key set; its pattern weights are the oracle\'s bit for bit', () => {
  assert.deepEqual(narrow.keys.map(([k]) => k), full.keys.map(([k]) => k));
  assert.equal(narrow.keys.length, 368);
  const [key, shape] = narrow.keys[0]!;
  assert.equal(key, 'pretrained.model.cls_token');
  assert.deepEqual(patternTensor(key, shape).subarray(0, 64), fx.f32('narrow/w0'));
});

test(`narrow DPT-Hybrid built from the checkpoint's keys equals controlnet_aux's module within ${REL_TOL} of its range`, async (t) => {
  const { worst, peak } = await runDepth(narrow);
  t.diagnostic(`max |diff| ${worst}, max |ref| ${peak}, torch float32 vs float64 ${narrow.torch_float32_error}`);
  assert.ok(peak > 1, 'a depth map, not flat zero');
  assert.ok(worst <= REL_TOL * peak, `max |diff| ${worst} (max |ref| ${peak}; torch's own float32 error ${narrow.torch_float32_error})`);
});

test('full-size DPT-Hybrid (123 M pattern weights) equals controlnet_aux\'s module', { skip: process.env.MIDAS_FULL_SIZE ? false : 'MIDAS_FULL_SIZE not set (2.6 GB and ~20 s)' }, async (t) => {
  const { worst, peak } = await runDepth(full);
  t.diagnostic(`max |diff| ${worst}, max |ref| ${peak}, torch float32 vs float64 ${full.torch_float32_error}`);
  assert.ok(worst <= REL_TOL * peak, `max |diff| ${worst} (max |ref| ${peak}; torch's own float32 error ${full.torch_float32_error})`);
});

test('weight standardization: per output channel zero mean, unit biased variance (eps 1e-8)', () => {
  const w = standardizeKernel(Float32Array.of(1, 2, 3, 4, -1, 1, -1, 1), 2, 1e-8);
  const s = Math.sqrt(1.25 + 1e-8);
  assert.deepEqual([...w], [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s, -1, 1, -1, 1].map((v, i) => Math.fround(i < 4 ? v : v / Math.sqrt(1 + 1e-8))));
});

test('a foreign or altered checkpoint fails the build naming the key; {"model", "optimizer"} files are read under "model."', () => {
  assert.throws(() => buildMidasDpt(patternSource([...narrow.keys, ['scratch.extra.weight', [1]]])), /not used.*scratch\.extra\.weight/);
  assert.throws(() => buildMidasDpt(patternSource(narrow.keys.filter(([k]) => k !== 'scratch.output_conv.4.weight'))), /missing weight scratch\.output_conv\.4\.weight/);
  assert.throws(() => buildMidasDpt(patternSource(narrow.keys.filter(([k]) => !k.includes('stem.conv')))), /not a MiDaS DPT-Hybrid checkpoint/);
  assert.throws(() => buildMidasDpt(patternSource(narrow.keys.filter(([k]) => !k.startsWith('pretrained.model.blocks.11.')))), /11 ViT blocks, expected 12/);
  const g = buildMidasDpt(patternSource([...narrow.keys.map(([k, s]): [string, number[]] => [`model.${k}`, s]), ['optimizer.state', [1]]]));
  const names = new Set(g.initializers.map((i) => i.name));
  assert.ok(names.has('pretrained.model.patch_embed.backbone.stem.conv.weight'));
  // what the forward pass never reads stays out of the graph
  for (const k of ['pretrained.model.head.weight', 'pretrained.model.norm.weight', 'scratch.refinenet4.resConfUnit1.conv1.weight']) assert.ok(!names.has(k), k);
});

test('auto_hint depth builds MiDaS from the checkpoint in the models folder and equals MidasDetector\'s hint; a missing or foreign file is a 422 naming it relative to the folder', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'annotator-midas-'));
  try {
    const { width, height } = fx.meta.detector as { width: number; height: number };
    const image = { width, height, data: u8('detector/image') };
    await assert.rejects(annotate('depth', image, { width, height, modelsDir: dir }), (e: unknown) => {
      assert.ok(e instanceof AnnotatorMissingError);
      assert.equal(e.file, 'annotator/midas/dpt_hybrid-midas-501f0c75.pt');
      assert.match(e.message, /get it from hf:lllyasviel\/Annotators dpt_hybrid-midas-501f0c75\.pt .*or the ONNX export annotator\/depth-anything-v2-small\/model\.onnx/);
      assert.ok(!e.message.includes(dir));
      return true;
    });
    const file = join(dir, 'annotator/midas/dpt_hybrid-midas-501f0c75.safetensors');
    await mkdir(join(dir, 'annotator/midas'), { recursive: true });
    await writeSafetensors(file, Object.fromEntries(narrow.keys.map(([k, s]) => [k, { dtype: 'float32' as const, shape: s, data: patternValue(k, s) }])));
    const st = annotatorStatus(dir).find((s) => s.type === 'depth')!;
    assert.equal(st.state, 'checkpoint');
    assert.deepEqual(st.uses, ['annotator/midas/dpt_hybrid-midas-501f0c75.safetensors']);

    const hint = await annotate('depth', image, { width, height, modelsDir: dir });
    const ref = u8('detector/hint');
    assert.equal(hint.data.length, ref.length);
    let equal = 0, worst = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(hint.data[i]! - ref[i]!);
      worst = Math.max(worst, d);
      if (d === 0) equal++;
    }
    t.diagnostic(`${equal} of ${ref.length} hint bytes equal, max difference ${worst}`);
    // uint8 truncation of depth * 255: float32 noise can only move a value across one level boundary
    assert.ok(worst <= 1, `max gray-level difference ${worst}`);
    assert.ok(equal / ref.length > 0.95, `${equal} of ${ref.length} equal`);
    assert.ok(new Set(ref).size > 50, 'the reference hint is a gradient, not a constant');

    // a foreign file under the checkpoint's name
    await writeSafetensors(file, { 'other.weight': { dtype: 'float32', shape: [2], data: Float32Array.of(1, 2) } });
    await releaseAnnotatorSessions();
    await assert.rejects(annotate('depth', image, { width, height, modelsDir: dir }), (e: unknown) => {
      assert.ok(e instanceof EngineError, `${e}`);
      assert.equal(e.code, 'model_missing');
      assert.match(e.message, /annotator\/midas\/dpt_hybrid-midas-501f0c75\.safetensors cannot be used: .*not a MiDaS DPT-Hybrid checkpoint/);
      assert.ok(!e.message.includes(dir));
      return true;
    });
  } finally {
    await releaseAnnotatorSessions();
    await rm(dir, { recursive: true, force: true });
  }
});
