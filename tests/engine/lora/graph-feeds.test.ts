// End to end with the networks' LoRA slots: a graph fed with parse + combine + loraFeeds computes what the
// same layers compute with the weights diffusers fuses (W + ΔW from tools/oracle/lora.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { GraphBuilder } from '../../../src/engine/onnx/graph.ts';
import { writeModel } from '../../../src/engine/onnx/serialize.ts';
import { conv, linear, Net } from '../../../src/engine/models/layers.ts';
import { WeightReader } from '../../../src/engine/models/weight-reader.ts';
import { MemorySource } from '../../../src/engine/weights/views.ts';
import { readLora } from '../../../src/engine/lora/load.ts';
import { combineLoras, loraFeeds } from '../../../src/engine/lora/combine.ts';
import { FIXTURES, loadFixture, maxAbsDiff } from '../../support/fixtures.ts';

const LIN = 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q';
const DOWN = 'down_blocks.0.downsamplers.0.conv';
const CONV1 = 'down_blocks.0.resnets.0.conv1';
const CONV2 = 'down_blocks.0.resnets.0.conv2'; // no LoRA touches it

function rand(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.5);
}

function weights(delta?: (name: string, w: Float32Array) => Float32Array): MemorySource {
  const t: Record<string, { shape: number[]; data: Float32Array }> = {};
  const shapes: Record<string, number[]> = { [LIN]: [8, 8], [DOWN]: [8, 8, 3, 3], [CONV1]: [8, 8, 3, 3], [CONV2]: [8, 8, 3, 3] };
  Object.entries(shapes).forEach(([m, shape], i) => {
    const w = rand(shape.reduce((a, b) => a * b, 1), 11 + i);
    t[`${m}.weight`] = { shape, data: delta ? delta(`${m}.weight`, w) : w };
    t[`${m}.bias`] = { shape: [shape[0]!], data: rand(shape[0]!, 101 + i) };
  });
  return MemorySource.fromF32(t);
}

function build(src: MemorySource, lora: boolean): { g: GraphBuilder; net: Net } {
  const g = new GraphBuilder('lora-feeds');
  const net = new Net(g, new WeightReader(src, 'test'), lora);
  const tokens = g.input('tokens', 'float32', [2, 5, 8]);
  const image = g.input('image', 'float32', [1, 8, 6, 6]);
  net.withLora(() => {
    g.output(linear(net, tokens, LIN), 'lin', 'float32', [2, 5, 8]);
    g.output(conv(net, image, DOWN, { stride: 2, pad: 1 }), 'down', 'float32', [1, 8, 3, 3]);
    g.output(conv(net, conv(net, image, CONV1), CONV2), 'convs', 'float32', [1, 8, 6, 6]);
  });
  return { g, net };
}

async function run(g: GraphBuilder, extra: Record<string, ort.Tensor>): Promise<ort.InferenceSession.OnnxValueMapType> {
  const dir = mkdtempSync(join(tmpdir(), 'lora-test-'));
  try {
    const file = join(dir, 'model.onnx');
    await writeModel(g, file);
    const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
    return await s.run({
      tokens: new ort.Tensor('float32', rand(80, 7), [2, 5, 8]),
      image: new ort.Tensor('float32', rand(288, 9), [1, 8, 6, 6]),
      ...extra,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('LoRA feeds in a graph equal diffusers-fused weights (linear, strided conv, LoCon conv, untouched slot)', async () => {
  const fx = loadFixture('lora/combo_delta'); // kohya @ 0.7 + diffusers-peft @ 0.4
  const loras = await Promise.all((fx.meta.files as string[]).map(async (f, i) => ({
    parsed: await readLora(join(FIXTURES, 'lora', f)), strength: (fx.meta.strengths as number[])[i]!,
  })));
  const withLora = build(weights(), true);
  assert.deepEqual(withLora.net.loraSlots.map((s) => s.name), [LIN, DOWN, CONV1, CONV2].map((m) => `${m}.weight`));
  for (const emptyRank of [0, 1] as const) {
    const { feeds } = loraFeeds(withLora.net.loraSlots, combineLoras(loras), { emptyRank });
    const ortFeeds = Object.fromEntries([...feeds].map(([k, t]) => [k, new ort.Tensor('float32', t.data, t.dims)]));
    const ours = await run(withLora.g, ortFeeds);
    const fused = await run(build(weights((name, w) => {
      if (!fx.tensors[name]) return w;
      const d = fx.f32(name);
      return w.map((v, i) => v + d[i]!);
    }), false).g, {});
    for (const k of ['lin', 'down', 'convs']) {
      const err = maxAbsDiff(ours[k]!.data as Float32Array, fused[k]!.data as Float32Array);
      assert.ok(err <= 1e-5, `${k} (empty rank ${emptyRank}): max abs ${err}`);
    }
    const plain = await run(build(weights(), false).g, {});
    assert.ok(maxAbsDiff(ours.lin!.data as Float32Array, plain.lin!.data as Float32Array) > 1e-2, 'the LoRA changes the output');
  }
});

test('LoRA slots no LoRA touches (linear: zero-sized down, up and scale; conv: rank-1 zeros) give the plain layers', async () => {
  const withLora = build(weights(), true);
  const { feeds } = loraFeeds(withLora.net.loraSlots, new Map());
  assert.deepEqual(feeds.get(`${LIN}.weight.lora_scale`)!.dims, [0]);
  assert.deepEqual(feeds.get(`${CONV1}.weight.lora_down`)!.dims, [1, 8, 3, 3]);
  const ours = await run(withLora.g, Object.fromEntries([...feeds].map(([k, t]) => [k, new ort.Tensor('float32', t.data, t.dims)])));
  const plain = await run(build(weights(), false).g, {});
  for (const k of ['lin', 'down', 'convs']) {
    const err = maxAbsDiff(ours[k]!.data as Float32Array, plain[k]!.data as Float32Array);
    assert.ok(err <= 1e-6, `${k}: max abs ${err}`);
  }
});
