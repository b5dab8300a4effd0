// Annotator networks built by our graph builder from their original checkpoint layouts (keys and shapes of
// controlnet_aux 0.0.10's modules), against those modules with the same pattern weights
// (tools/oracle/annotator_checkpoints.py): raw outputs before post-processing within 1e-4.
import { test } from 'node:test';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnnotatorMissingError, annotate, annotatorNote, annotatorStatus, releaseAnnotatorSessions } from '../../../../src/engine/annotators/index.ts';
import * as dense from '../../../../src/engine/annotators/neural/dense.ts';
import { EngineError } from '../../../../src/engine/errors.ts';
import { writeSafetensors } from '../../../../src/engine/weights/safetensors.ts';
import assert from 'node:assert/strict';
import { loadFixture } from '../../../support/fixtures.ts';
import { patternInput, patternSource, patternTensor, patternValue } from '../../../support/pattern-weights.ts';
import { buildHed } from '../../../../src/engine/models/annotators/hed.ts';
import { buildLineart } from '../../../../src/engine/models/annotators/lineart.ts';
import { buildMlsd } from '../../../../src/engine/models/annotators/mlsd.ts';
import { buildPidinet } from '../../../../src/engine/models/annotators/pidinet.ts';
import { buildNormalBae } from '../../../../src/engine/models/annotators/normalbae.ts';
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

const BUILDERS: Record<string, (src: WeightSource) => GraphBuilder> = { hed: buildHed, lineart: buildLineart, mlsd: buildMlsd, pidinet: buildPidinet, normalbae: buildNormalBae };

test('the pattern weights are the oracle\'s, bit for bit', () => {
  for (const name of Object.keys(BUILDERS)) {
    const [key, shape] = (fx.meta[name].keys as [string, number[]][])[0]!;
    assert.deepEqual(patternTensor(key, shape).subarray(0, 64), fx.f32(`${name}/w0`));
  }
});

for (const [name, build] of Object.entries(BUILDERS)) {
  test(`${name}: built from the checkpoint's keys, equal to controlnet_aux's module within ${TOL}`, async () => {
    const m = fx.meta[name] as { keys: [string, number[]][]; input: number[]; scale: number; offset?: number; outputs: number[][] };
    const x = patternInput(m.input, m.scale).map((v) => v + (m.offset ?? 0));
    const outs = await run(build(patternSource(m.keys)), x, m.input);
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
    // NormalBae reads its weights under the prefix of its stem convolution; a stray key under that prefix fails
    if (name === 'normalbae') {
      assert.throws(() => build(patternSource([...m.keys, ['decoder.extra.weight', [1]]])), /not used.*decoder\.extra\.weight/);
      assert.throws(() => build(patternSource(m.keys.slice(1))), /missing weight encoder\.original_model\.conv_stem\.weight/);
      assert.throws(() => build(patternSource(m.keys.filter(([k]) => k !== 'decoder.conv2.weight'))), /missing weight decoder\.conv2\.weight/);
      // scannet.pt as published: under "model" with DataParallel's "module.", beside other entries of the file
      const g = build(patternSource([...m.keys.map(([k, s]): [string, number[]] => [`model.module.${k}`, s]), ['optimizer.step', [1]]]));
      assert.ok(g.initializers.some((i) => i.name === 'encoder.original_model.conv_stem.weight'));
      return;
    }
    assert.throws(() => build(patternSource([...m.keys, ['extra.weight', [1]]])), /not used.*extra\.weight/);
    assert.throws(() => build(patternSource(m.keys.slice(1))), new RegExp(`missing weight ${m.keys[0]![0].replace(/\./g, '\\.')}`));
  });
}

test('auto_hint hed, scribble, lineart, mlsd and softedge run the networks built from checkpoints in the models folder; a foreign file is a 422 naming it relative to the folder', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'annotator-ckpt-'));
  try {
    const img = { width: 40, height: 32, data: patternInput([40 * 32 * 3], 255).map((v) => Math.round(v)) as unknown as Uint8Array };
    const rgb = { ...img, data: Uint8Array.from(img.data) };
    const write = async (file: string, keys: [string, number[]][], patternKey: (k: string) => string = (k) => k) => {
      await mkdir(join(dir, 'annotator', file, '..'), { recursive: true });
      const tensors = Object.fromEntries(keys.map(([k, s]) => [k, k.endsWith('num_batches_tracked')
        ? { dtype: 'int64' as const, shape: s, data: new BigInt64Array(1) }
        : { dtype: 'float32' as const, shape: s, data: patternValue(patternKey(k), s) }]));
      await writeSafetensors(join(dir, 'annotator', file), tensors);
    };
    await assert.rejects(annotate('hed', rgb, { width: 40, height: 32, modelsDir: dir }), (e: unknown) => {
      assert.ok(e instanceof AnnotatorMissingError);
      assert.equal(e.file, 'annotator/hed/ControlNetHED.pth');
      assert.match(e.message, /get it from hf:lllyasviel\/Annotators ControlNetHED\.pth \(or the ONNX export annotator\/hed\/ControlNetHED\.onnx/);
      return true;
    });
    assert.equal(annotatorStatus(dir).find((s) => s.type === 'hed')!.state, 'missing');
    await write('hed/ControlNetHED.safetensors', fx.meta.hed.keys);
    await write('lineart/sk_model.safetensors', fx.meta.lineart.keys);
    await write('mlsd/mlsd_large_512_fp32.safetensors', fx.meta.mlsd.keys);
    // PiDiNet as published: DataParallel's "module." prefix on every key
    await write('pidinet/table5_pidinet.safetensors', fx.meta.pidinet.keys.map(([k, s]: [string, number[]]) => [`module.${k}`, s]), (k) => k.replace(/^module\./, ''));
    const st = Object.fromEntries(annotatorStatus(dir).map((s) => [s.type, s]));
    assert.equal(st.hed!.state, 'checkpoint');
    assert.deepEqual(st.hed!.uses, ['annotator/hed/ControlNetHED.safetensors']);
    assert.equal(st.scribble!.state, 'checkpoint');
    assert.equal(st.lineart!.state, 'checkpoint');
    assert.equal(st.mlsd!.state, 'checkpoint');
    assert.equal(st.softedge!.state, 'checkpoint');
    for (const t of ['hed', 'scribble', 'lineart', 'mlsd', 'softedge'] as const) {
      const hint = await annotate(t, rgb, { width: 40, height: 32, modelsDir: dir });
      assert.equal(hint.data.length, 40 * 32 * 3);
      assert.equal(annotatorNote(t, dir), undefined, `${t} runs its own network, no fallback note`);
    }
    // the hints are the networks': the same maps as the graphs built directly
    const direct = await dense.hed(rgb, await ort.InferenceSession.create(await encodeModel(buildHed(patternSource(fx.meta.hed.keys)))));
    assert.deepEqual((await annotate('hed', rgb, { width: 40, height: 32, modelsDir: dir })).data, direct.data);
    const soft = await dense.softedge(rgb, await ort.InferenceSession.create(await encodeModel(buildPidinet(patternSource(fx.meta.pidinet.keys)))));
    assert.deepEqual((await annotate('softedge', rgb, { width: 40, height: 32, modelsDir: dir })).data, soft.data);
    // a foreign file under the lineart name: 422 naming it relative to the models folder, no server path
    await write('lineart/sk_model.safetensors', fx.meta.hed.keys);
    await releaseAnnotatorSessions();
    await assert.rejects(annotate('lineart', rgb, { width: 40, height: 32, modelsDir: dir }), (e: unknown) => {
      assert.ok(e instanceof EngineError, `${e}`);
      assert.equal(e.code, 'model_missing');
      assert.match(e.message, /annotator\/lineart\/sk_model\.safetensors cannot be used: .*missing weight model0\.1\.weight/);
      assert.ok(!e.message.includes(dir));
      return true;
    });
  } finally {
    await releaseAnnotatorSessions();
    await rm(dir, { recursive: true, force: true });
  }
});
