import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { buildUNet } from '../../../src/engine/models/unet.ts';
import { buildClipText } from '../../../src/engine/models/clip-text.ts';
import { loraSlotsFromInputs } from '../../../src/engine/models/lora-slots.ts';
import { loraFeeds as loraFeedTensors, type LoraSlotSpec } from '../../../src/engine/lora/combine.ts';
import type { FeedTensor } from '../../../src/engine/lora/types.ts';
import { loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { f32, i64, scalarI64, sessionFor, tinyConfig, tinyWeights } from './support.ts';
import type { Fixture } from '../../support/fixtures.ts';

/** The product's feed builder (lora/combine.ts) as ort tensors: given branches where named, zeros elsewhere (rank 0; conv slots rank 1). */
function loraFeeds(slots: LoraSlotSpec[], given: Map<string, FeedTensor>): Record<string, ort.Tensor> {
  const { feeds, unused } = loraFeedTensors(slots, given, { emptyRank: 0 });
  assert.deepEqual(unused, [], 'every given branch has a slot');
  return Object.fromEntries([...feeds].map(([k, t]) => [k, new ort.Tensor('float32', t.data, t.dims)]));
}

function fixtureBranches(lx: Fixture): Map<string, FeedTensor> {
  const given = new Map<string, FeedTensor>();
  for (const name of lx.meta.slots as string[]) {
    for (const part of ['lora_down', 'lora_up']) {
      const t = lx.get(`${name}.${part}`);
      given.set(`${name}.${part}`, { dims: t.shape, data: t.data as Float32Array });
    }
    // the fixture's ups already carry the LoRA scale: scale 1 on every rank row
    const rank = given.get(`${name}.lora_down`)!.dims[0]!;
    given.set(`${name}.lora_scale`, { dims: [rank], data: new Float32Array(rank).fill(1) });
  }
  return given;
}

const TOL = 1e-4;

test('UNet LoRA slots: zero inputs (rank 0, conv slots rank 1) give the plain UNet; rank-2 LoRAs equal diffusers with merged weights', async () => {
  const fx = loadFixture('tiny/unet_fwd');
  const lx = loadFixture('tiny/unet_lora_fwd');
  const src = await tinyWeights('sd15/unet', 'diffusion_pytorch_model.fp16.safetensors');
  const { graph, net } = buildUNet(tinyConfig('sd15/unet'), src, { lora: true });
  const slots = net.loraSlots;
  // attn q/k/v/out ×2, ff ×2, proj_in/out per transformer block; resnet convs + time_emb_proj; down/up samplers
  assert.equal(slots.filter((s) => s.name.includes('transformer_blocks.0.attn1.to_q')).length, 6);
  assert.ok(slots.some((s) => s.name === 'down_blocks.0.downsamplers.0.conv.weight' && s.kind === 'conv'));
  assert.ok(slots.some((s) => s.name === 'up_blocks.0.resnets.0.conv_shortcut.weight'));
  assert.ok(!slots.some((s) => s.name.startsWith('conv_in') || s.name.startsWith('time_embedding')));
  const s = await sessionFor(graph);
  assert.deepEqual(loraSlotsFromInputs(s.inputNames, src), slots);
  const base = { sample: f32(fx, 'sample'), timestep: f32(fx, 'timestep'), encoder_hidden_states: f32(fx, 'encoder_hidden_states') };

  const plain = await s.run({ ...base, ...loraFeeds(slots, new Map()) });
  const err0 = maxAbsDiff(plain.out_sample!.data as Float32Array, fx.f32('out'));
  assert.ok(err0 <= TOL, `no LoRA: max abs err ${err0}`);

  const given = fixtureBranches(lx);
  const withLora = await s.run({ ...base, ...loraFeeds(slots, given) });
  const err = maxAbsDiff(withLora.out_sample!.data as Float32Array, lx.f32('out'));
  assert.ok(err <= TOL, `LoRA: max abs err ${err}`);
  assert.ok(maxAbsDiff(lx.f32('out'), fx.f32('out')) > 1e-2, 'the LoRA fixture must change the output');
});

test('CLIP LoRA slots equal transformers with merged weights', async () => {
  const fx = loadFixture('tiny/clip_fwd');
  const lx = loadFixture('tiny/clip_lora_fwd');
  const src = await tinyWeights('sd15/text_encoder', 'model.safetensors');
  const { graph, net } = buildClipText(tinyConfig('sd15/text_encoder'), src, { lora: true });
  assert.equal(net.loraSlots.length, 5 * 6);
  const s = await sessionFor(graph);
  const given = fixtureBranches(lx);
  for (const k of [0, 1]) {
    const out = await s.run({ input_ids: i64(fx, 'input_ids'), skip: scalarI64(k), ...loraFeeds(net.loraSlots, given) });
    const err = maxAbsDiff(out.hidden_states!.data as Float32Array, lx.f32(`skip${k}`));
    assert.ok(err <= TOL, `skip ${k}: max abs err ${err}`);
  }
});
