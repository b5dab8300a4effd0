// UniFormer-S + UperNet (the segmentation annotator, ControlNet 1.1's seg_ufade20k) built by our graph builder from
// the checkpoint's keys, against lllyasviel/ControlNet-v1-1-nightly's annotator/uniformer (its vendored mmseg, the
// config exp/upernet_global_small/config.py) with the same pattern weights (tools/oracle/annotator_uniformer.py): a
// narrow variant with the real key set (every run), the full-size layout (opt-in: UNIFORMER_FULL_SIZE=1), and
// UniformerDetector's whole hint through auto_hint with the checkpoint in a models folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnnotatorMissingError, annotate, annotatorStatus, releaseAnnotatorSessions } from '../../../../src/engine/annotators/index.ts';
import { ADE20K_PALETTE } from '../../../../src/engine/annotators/neural/ade20k.ts';
import { cvResizeLinear, mmsegNormalize, mmsegRescaleSize } from '../../../../src/engine/annotators/neural/uniformer.ts';
import { EngineError } from '../../../../src/engine/errors.ts';
import { buildUniformerUpernet } from '../../../../src/engine/models/annotators/uniformer.ts';
import { encodeModel } from '../../../../src/engine/onnx/serialize.ts';
import { ort } from '../../../../src/engine/onnx/session.ts';
import { writeSafetensors } from '../../../../src/engine/weights/safetensors.ts';
import { loadFixture } from '../../../support/fixtures.ts';
import { patternInput, patternSource, patternTensor, patternValue } from '../../../support/pattern-weights.ts';

const fx = loadFixture('annotators/uniformer');
type Case = { keys: [string, number[]][]; input: number[]; scale: number; offset: number; output_size: [number, number]; outputs: number[][]; torch_float32_error: number };
const u8 = (key: string) => fx.get(key).data as Uint8Array;
const narrow = fx.meta.narrow as Case;
const full = fx.meta.full as Case;
const detector = fx.meta.detector as { width: number; height: number; network_input: number[]; outputs: number[][]; min_top2_gap: number };
/** The logits before argmax; torch's own float32 error is recorded beside (float32 vs float64 run of the oracle). */
const TOL = 1e-4;

async function session(keys: [string, number[]][]): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(await encodeModel(buildUniformerUpernet(patternSource(keys))));
}

async function logits(s: ort.InferenceSession, x: Float32Array, dims: number[], size: [number, number]): Promise<ort.Tensor> {
  const out = await s.run({ x: new ort.Tensor('float32', x, dims), output_size: new ort.Tensor('int64', BigInt64Array.from(size.map(BigInt)), [2]) });
  return out.logits!;
}

function maxDiff(y: Float32Array, ref: Float32Array): { worst: number; peak: number } {
  assert.equal(y.length, ref.length);
  let worst = 0, peak = 0;
  for (let i = 0; i < y.length; i++) { worst = Math.max(worst, Math.abs(y[i]! - ref[i]!)); peak = Math.max(peak, Math.abs(ref[i]!)); }
  return { worst, peak };
}

async function runCase(c: Case, ref: string): Promise<{ worst: number; peak: number }> {
  const s = await session(c.keys);
  try {
    const x = patternInput(c.input, c.scale).map((v) => v + c.offset);
    const out = await logits(s, x, c.input, c.output_size);
    assert.deepEqual(out.dims, c.outputs[0]);
    return maxDiff(out.data as Float32Array, fx.f32(ref));
  } finally {
    await s.release();
  }
}

test('the narrow variant has the real checkpoint\'s key set; its pattern weights are the oracle\'s bit for bit', () => {
  assert.deepEqual(narrow.keys.map(([k]) => k), full.keys.map(([k]) => k));
  const [key, shape] = narrow.keys[0]!;
  assert.equal(key, 'backbone.patch_embed1.norm.weight');
  assert.deepEqual(patternTensor(key, shape).map((v) => 1 + v).subarray(0, 64), fx.f32('narrow/w0'));
  assert.ok(full.keys.some(([k]) => k === 'decode_head.psp_modules.3.1.conv.weight'));
});

test(`narrow UniFormer + UperNet built from the checkpoint's keys equals the annotator's module (logits within ${TOL})`, async (t) => {
  const { worst, peak } = await runCase(narrow, 'narrow/0');
  t.diagnostic(`max |diff| ${worst}, max |ref| ${peak}, torch float32 vs float64 ${narrow.torch_float32_error}`);
  assert.ok(peak > 0.5, 'logits, not flat zero');
  assert.ok(worst <= TOL, `max |diff| ${worst} (max |ref| ${peak}; torch's own float32 error ${narrow.torch_float32_error})`);
});

test('full-size UniFormer-S + UperNet (pattern weights) equals the annotator\'s module', { skip: process.env.UNIFORMER_FULL_SIZE ? false : 'UNIFORMER_FULL_SIZE not set (~52 M weights, ~0.5 GB, ~7 s)' }, async (t) => {
  const { worst, peak } = await runCase(full, 'full/0');
  t.diagnostic(`max |diff| ${worst}, max |ref| ${peak}, torch float32 vs float64 ${full.torch_float32_error}`);
  assert.ok(worst <= TOL, `max |diff| ${worst} (max |ref| ${peak}; torch's own float32 error ${full.torch_float32_error})`);
});

test('mmseg\'s keep-ratio rescale into (2048, 512) and cv2.resize INTER_LINEAR on uint8, bit for bit', () => {
  const { width, height } = detector;
  assert.deepEqual(mmsegRescaleSize(width, height), { w: detector.network_input[3], h: detector.network_input[2] });
  assert.deepEqual(mmsegRescaleSize(768, 512), { w: 768, h: 512 });
  assert.deepEqual(mmsegRescaleSize(3000, 600), { w: 2048, h: 410 });
  const image = { width, height, data: u8('detector/image') };
  for (const [w, h] of fx.meta.resize as [number, number][]) {
    const r = cvResizeLinear(image, w, h);
    if (w === 683) {
      const rows = u8('resize/683x512/rows');
      const mine = new Uint8Array(rows.length);
      for (let y = 0, o = 0; y < h; y += 37, o += w * 3) mine.set(r.data.subarray(y * w * 3, (y + 1) * w * 3), o);
      assert.deepEqual(mine, rows, `${w}x${h}`);
    } else {
      assert.deepEqual(r.data, u8(`resize/${w}x${h}`), `${w}x${h}`);
    }
  }
});

test('the ADE20k palette is mmseg\'s get_palette(\'ade\')', () => {
  assert.deepEqual(ADE20K_PALETTE, u8('palette'));
});

test('a foreign or altered checkpoint fails the build naming the key; "state_dict." and auxiliary_head are handled', () => {
  assert.throws(() => buildUniformerUpernet(patternSource([...narrow.keys, ['decode_head.extra.weight', [1]]])), /not used.*decode_head\.extra\.weight/);
  assert.throws(() => buildUniformerUpernet(patternSource(narrow.keys.filter(([k]) => k !== 'decode_head.fpn_bottleneck.bn.running_var'))), /missing weight decode_head\.fpn_bottleneck\.bn\.running_var/);
  assert.throws(() => buildUniformerUpernet(patternSource(narrow.keys.filter(([k]) => !k.startsWith('backbone.blocks2.')))), /stage 2 has no blocks/);
  assert.throws(() => buildUniformerUpernet(patternSource(narrow.keys.filter(([k]) => !k.startsWith('backbone.patch_embed1.')))), /not a UniFormer \+ UperNet checkpoint/);
  assert.throws(() => buildUniformerUpernet(patternSource(narrow.keys.filter(([k]) => !k.startsWith('decode_head.psp_modules.3.')))), /psp_modules\.3\.1\.conv\.weight/);
  const g = buildUniformerUpernet(patternSource([...narrow.keys.map(([k, s]): [string, number[]] => [`state_dict.${k}`, s])]));
  const names = new Set(g.initializers.map((i) => i.name));
  assert.ok(names.has('backbone.blocks3.7.attn.qkv.weight'));
  // the training-only auxiliary head and the BatchNorm counters stay out of the graph
  for (const k of ['auxiliary_head.conv_seg.weight', 'auxiliary_head.convs.0.conv.weight', 'decode_head.bottleneck.bn.num_batches_tracked']) assert.ok(!names.has(k), k);
});

test('auto_hint segmentation builds UniFormer from the checkpoint in the models folder and equals UniformerDetector\'s hint; a missing or foreign file is a 422 naming it relative to the folder', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'annotator-uniformer-'));
  try {
    const { width, height } = detector;
    const image = { width, height, data: u8('detector/image') };
    await assert.rejects(annotate('segmentation', image, { width, height, modelsDir: dir }), (e: unknown) => {
      assert.ok(e instanceof AnnotatorMissingError);
      assert.equal(e.file, 'annotator/uniformer/upernet_global_small.pth');
      assert.match(e.message, /get it from hf:lllyasviel\/Annotators upernet_global_small\.pth/);
      assert.ok(!e.message.includes(dir));
      return true;
    });
    const file = join(dir, 'annotator/uniformer/upernet_global_small.safetensors');
    await mkdir(join(dir, 'annotator/uniformer'), { recursive: true });
    await writeSafetensors(file, Object.fromEntries(narrow.keys.map(([k, s]) => [k, k.endsWith('num_batches_tracked')
      ? { dtype: 'int64' as const, shape: s, data: new BigInt64Array(1) }
      : { dtype: 'float32' as const, shape: s, data: patternValue(k, s) }])));
    const st = annotatorStatus(dir).find((s) => s.type === 'segmentation')!;
    assert.equal(st.state, 'checkpoint');
    assert.deepEqual(st.uses, ['annotator/uniformer/upernet_global_small.safetensors']);

    // the logits through the detector's preprocessing, against those the annotator's whole_inference returned
    const { w, h } = mmsegRescaleSize(width, height);
    const s = await session(narrow.keys);
    const refLogits = fx.f32('detector/logits');
    let mine: Float32Array;
    try {
      mine = (await logits(s, mmsegNormalize(cvResizeLinear(image, w, h)), [1, 3, h, w], [height, width])).data as Float32Array;
    } finally {
      await s.release();
    }
    const { worst, peak } = maxDiff(mine, refLogits);
    t.diagnostic(`detector logits: max |diff| ${worst}, max |ref| ${peak}, smallest top-2 gap in the reference ${detector.min_top2_gap}`);
    assert.ok(worst <= TOL, `max |diff| ${worst}`);

    const hint = await annotate('segmentation', image, { width, height, modelsDir: dir });
    const ref = u8('detector/hint');
    const labels = fx.get('detector/labels').data as Int32Array;
    assert.equal(hint.data.length, ref.length);
    // a pixel may differ only where the reference's top-2 logits are within our logits' difference (a rounding tie)
    const classes = detector.outputs[0]![1]!, n = width * height;
    let differing = 0;
    for (let i = 0; i < n; i++) {
      if (hint.data[3 * i] === ref[3 * i] && hint.data[3 * i + 1] === ref[3 * i + 1] && hint.data[3 * i + 2] === ref[3 * i + 2]) continue;
      differing++;
      const top = refLogits[labels[i]! * n + i]!;
      let second = -Infinity;
      for (let k = 0; k < classes; k++) if (k !== labels[i]) second = Math.max(second, refLogits[k * n + i]!);
      assert.ok(top - second <= 2 * worst, `pixel ${i}: differs with a top-2 gap of ${top - second}`);
    }
    t.diagnostic(`${n - differing} of ${n} hint pixels equal (${differing} differ, each at a top-2 tie); ${new Set(labels).size} classes in the reference`);
    assert.ok(new Set(labels).size > 3, 'the reference map has several classes');

    // a foreign file under the checkpoint's name
    await writeSafetensors(file, { 'other.weight': { dtype: 'float32', shape: [2], data: Float32Array.of(1, 2) } });
    await releaseAnnotatorSessions();
    await assert.rejects(annotate('segmentation', image, { width, height, modelsDir: dir }), (e: unknown) => {
      assert.ok(e instanceof EngineError, `${e}`);
      assert.equal(e.code, 'model_missing');
      assert.match(e.message, /annotator\/uniformer\/upernet_global_small\.safetensors cannot be used: .*not a UniFormer \+ UperNet checkpoint/);
      assert.ok(!e.message.includes(dir));
      return true;
    });
  } finally {
    await releaseAnnotatorSessions();
    await rm(dir, { recursive: true, force: true });
  }
});
