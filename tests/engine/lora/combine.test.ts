// Our parse + combine against the weight deltas diffusers (load_lora_weights + set_adapters + fuse_lora) and
// peft (merge_and_unload) apply, for every key format and for several LoRAs at once with strengths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FIXTURES, loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { readLora } from '../../../src/engine/lora/load.ts';
import { combineLoras, loraFeeds, type LoraSlotSpec } from '../../../src/engine/lora/combine.ts';
import type { FeedTensor } from '../../../src/engine/lora/types.ts';

/** ΔW = up @ diag(scale) @ down, [out, in·kh·kw], from the combined feeds (strength × alpha / r in up and scale). */
function delta(down: FeedTensor, up: FeedTensor, scale: FeedTensor): Float32Array {
  const R = down.dims[0]!;
  assert.equal(scale.data.length, R);
  const inner = down.data.length / R, out = up.data.length / R;
  const d = new Float32Array(out * inner);
  for (let o = 0; o < out; o++) {
    for (let r = 0; r < R; r++) {
      const u = up.data[o * R + r]! * scale.data[r]!;
      for (let i = 0; i < inner; i++) d[o * inner + i] += u * down.data[r * inner + i]!;
    }
  }
  return d;
}

/** up @ diag(scale): the up the graph effectively applies, [out, R]. */
function scaledUp(c: Map<string, FeedTensor>, t: string): Float32Array {
  const up = c.get(`${t}.lora_up`)!.data, scale = c.get(`${t}.lora_scale`)!.data;
  return up.map((v, i) => v * scale[i % scale.length]!);
}

const CASES = ['kohya_delta', 'kohya_ldm_delta', 'diffusers_old_delta', 'diffusers_peft_delta', 'combo_delta', 'combo3_delta', 'peft_delta'];

for (const name of CASES) {
  test(`LoRA ${name}: ΔW per layer matches the reference within 1e-5`, async () => {
    const fx = loadFixture(`lora/${name}`);
    const files = fx.meta.files as string[];
    const strengths = fx.meta.strengths as number[];
    const loras = await Promise.all(files.map(async (f, i) => ({ parsed: await readLora(join(FIXTURES, 'lora', f)), strength: strengths[i]! })));
    for (const l of loras) assert.deepEqual(l.parsed.ignored, []);
    const combined = combineLoras(loras);
    const targets = [...new Set([...combined.keys()].map((k) => k.replace(/\.lora_(down|up|scale)$/, '')))].sort();
    assert.deepEqual(targets, Object.keys(fx.tensors).sort(), 'the layers a LoRA changes');
    let worst = 0;
    for (const t of targets) {
      const down = combined.get(`${t}.lora_down`)!, up = combined.get(`${t}.lora_up`)!, scale = combined.get(`${t}.lora_scale`)!;
      const ref = fx.get(t);
      assert.equal(up.dims[0], ref.shape[0], `${t} out features`);
      const err = maxAbsDiff(delta(down, up, scale), ref.data as Float32Array);
      assert.ok(err <= 1e-5, `${t}: max abs ${err}`);
      worst = Math.max(worst, err);
    }
    // Rank of a combined branch = the sum of the files' ranks on that layer.
    if (loras.length > 1) {
      const t = targets[0]!;
      const ranks = loras.map((l) => l.parsed.targets.get(t)?.rank ?? 0);
      assert.equal(combined.get(`${t}.lora_down`)!.dims[0], ranks.reduce((a, b) => a + b, 0));
    }
    console.log(`${name}: ${targets.length} layers, max abs ${worst.toExponential(2)}`);
  });
}

test('combineLoras: the formats seen in each fixture file', async () => {
  const fmt = async (f: string) => (await readLora(join(FIXTURES, 'lora', f))).formats;
  assert.deepEqual(await fmt('kohya.safetensors'), ['kohya']);
  assert.deepEqual(await fmt('kohya_ldm.safetensors'), ['kohya', 'kohya-ldm']); // its text-encoder keys are plain kohya
  assert.deepEqual(await fmt('diffusers_old.safetensors'), ['diffusers', 'diffusers-old']);
  assert.deepEqual(await fmt('diffusers_peft.safetensors'), ['diffusers']);
  assert.deepEqual(await fmt('peft'), ['peft']);
});

test('loraFeeds: every slot gets a feed; LoRA slots the combined branch, the others zeros (linear rank 0 or 1, conv rank 1)', async () => {
  const parsed = await readLora(join(FIXTURES, 'lora', 'kohya.safetensors'));
  const combined = combineLoras([{ parsed, strength: 1 }]);
  const slots: LoraSlotSpec[] = [
    { name: 'down_blocks.0.resnets.0.conv1.weight', kind: 'conv', inFeatures: 8, outFeatures: 8, kernel: [3, 3] },
    { name: 'up_blocks.2.attentions.0.proj_in.weight', kind: 'conv', inFeatures: 16, outFeatures: 16, kernel: [1, 1] },
    { name: 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight', kind: 'linear', inFeatures: 8, outFeatures: 8, kernel: [1, 1] },
    { name: 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v.weight', kind: 'linear', inFeatures: 8, outFeatures: 8, kernel: [1, 1] },
    { name: 'down_blocks.0.resnets.1.conv2.weight', kind: 'conv', inFeatures: 8, outFeatures: 8, kernel: [3, 3] },
  ];
  const { feeds, unused } = loraFeeds(slots, combined, { emptyRank: 1 });
  assert.equal(feeds.size, 3 * slots.length);
  assert.deepEqual(feeds.get('down_blocks.0.resnets.0.conv1.weight.lora_down')!.dims, [2, 8, 3, 3]);
  assert.deepEqual(feeds.get('down_blocks.0.resnets.0.conv1.weight.lora_up')!.dims, [8, 2, 1, 1]);
  assert.deepEqual([...feeds.get('down_blocks.0.resnets.0.conv1.weight.lora_scale')!.data], [1, 1]);
  assert.deepEqual(feeds.get('up_blocks.2.attentions.0.proj_in.weight.lora_down')!.dims, [4, 16, 1, 1]);
  assert.deepEqual(feeds.get('down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight.lora_up')!.dims, [8, 4]);
  const zd = feeds.get('down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v.weight.lora_down')!;
  assert.deepEqual(zd.dims, [1, 8]);
  assert.ok(zd.data.every((v) => v === 0));
  assert.deepEqual(feeds.get('down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v.weight.lora_scale')!.dims, [1]);
  assert.deepEqual(feeds.get('down_blocks.0.resnets.1.conv2.weight.lora_up')!.dims, [8, 1, 1, 1]);
  // Everything the file has that these five slots lack is reported, text-encoder layers included.
  assert.equal(unused.length, combined.size / 3 - 3);
  assert.ok(unused.includes('text_model.encoder.layers.0.self_attn.q_proj.weight'));
  const empty = loraFeeds(slots.slice(0, 1), new Map());
  assert.deepEqual(empty.feeds.get('down_blocks.0.resnets.0.conv1.weight.lora_down')!.dims, [1, 8, 3, 3]); // never rank 0 (combine.ts FeedOptions)
  assert.ok(empty.feeds.get('down_blocks.0.resnets.0.conv1.weight.lora_down')!.data.every((v) => v === 0));
  assert.deepEqual(empty.feeds.get('down_blocks.0.resnets.0.conv1.weight.lora_up')!.dims, [8, 1, 1, 1]);
  assert.deepEqual(empty.feeds.get('down_blocks.0.resnets.0.conv1.weight.lora_scale')!.dims, [1]);
  assert.deepEqual([...empty.feeds.get('down_blocks.0.resnets.0.conv1.weight.lora_scale')!.data], [0]);
});

test('loraFeeds: a branch that does not fit its slot is an error', async () => {
  const parsed = await readLora(join(FIXTURES, 'lora', 'kohya.safetensors'));
  const combined = combineLoras([{ parsed, strength: 1 }]);
  const slot: LoraSlotSpec = { name: 'down_blocks.0.resnets.0.conv1.weight', kind: 'conv', inFeatures: 8, outFeatures: 8, kernel: [1, 1] };
  assert.throws(() => loraFeeds([slot], combined), /down_blocks\.0\.resnets\.0\.conv1\.weight/);
  // A branch without its scale (or up) is an error too, not a silent zero.
  const t = 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight';
  const noScale = new Map([...combined].filter(([k]) => k !== `${t}.lora_scale`));
  const linear: LoraSlotSpec = { name: t, kind: 'linear', inFeatures: 8, outFeatures: 8, kernel: [1, 1] };
  assert.throws(() => loraFeeds([linear], noScale), /to_q\.weight.*scale missing/);
});

test('combineLoras: strength 0 zeroes the branch; strengths scale linearly', async () => {
  const parsed = await readLora(join(FIXTURES, 'lora', 'kohya.safetensors'));
  const t = 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight';
  const a = scaledUp(combineLoras([{ parsed, strength: 0.5 }]), t);
  const b = scaledUp(combineLoras([{ parsed, strength: 1 }]), t);
  assert.ok(maxAbsDiff(a.map((v) => v * 2), b) < 1e-7);
  assert.ok(scaledUp(combineLoras([{ parsed, strength: 0 }]), t).every((v) => v === 0));
  assert.throws(() => combineLoras([{ parsed, strength: NaN }]), /strength/);
});

test('combineLoras: down / up are the parsed arrays (one LoRA) or a concatenation kept for the set; strengths only change the scales', async () => {
  const a = await readLora(join(FIXTURES, 'lora', 'kohya.safetensors'));
  const b = await readLora(join(FIXTURES, 'lora', 'diffusers_peft.safetensors'));
  const t = [...a.targets.keys()].find((k) => b.targets.has(k))!;
  const one = combineLoras([{ parsed: a, strength: 0.3 }]);
  assert.equal(one.get(`${t}.lora_down`)!.data, a.targets.get(t)!.down);
  assert.equal(one.get(`${t}.lora_up`)!.data, a.targets.get(t)!.up);
  assert.ok(one.get(`${t}.lora_scale`)!.data.every((v) => v === Math.fround(0.3)));

  const ab = combineLoras([{ parsed: a, strength: 0.7 }, { parsed: b, strength: 0.4 }]);
  const ra = a.targets.get(t)!.rank, rb = b.targets.get(t)!.rank;
  assert.deepEqual([...ab.get(`${t}.lora_scale`)!.data], [...Array(ra).fill(Math.fround(0.7)), ...Array(rb).fill(Math.fround(0.4))]);
  // Other strengths, the other order, and back after another set: the same concatenated arrays.
  const again = combineLoras([{ parsed: b, strength: 1 }, { parsed: a, strength: 0.2 }]);
  assert.equal(again.get(`${t}.lora_down`)!.data, ab.get(`${t}.lora_down`)!.data);
  assert.equal(again.get(`${t}.lora_up`)!.data, ab.get(`${t}.lora_up`)!.data);
  assert.deepEqual([...again.get(`${t}.lora_scale`)!.data], [...Array(ra).fill(Math.fround(0.2)), ...Array(rb).fill(1)]);
  combineLoras([{ parsed: a, strength: 1 }, { parsed: a, strength: 1 }]);
  const back = combineLoras([{ parsed: a, strength: 0.7 }, { parsed: b, strength: 0.4 }]);
  assert.equal(back.get(`${t}.lora_up`)!.data, ab.get(`${t}.lora_up`)!.data);
  // The parsed arrays themselves are never written.
  assert.equal(combineLoras([{ parsed: a, strength: 0.3 }]).get(`${t}.lora_up`)!.data, a.targets.get(t)!.up);
});

test('combineLoras: the same 1x1 layer stored as [r,in,1,1] in one file and [r,in] in another combines', async () => {
  const branch = (downDims: number[], upDims: number[], v: number) => ({
    down: new Float32Array(downDims.reduce((a, b) => a * b, 1)).fill(v), downDims,
    up: new Float32Array(upDims.reduce((a, b) => a * b, 1)).fill(1), upDims, rank: downDims[0]!, alpha: undefined,
  });
  const t = 'mid_block.attentions.0.proj_in.weight';
  const a = { targets: new Map([[t, branch([2, 3, 1, 1], [4, 2, 1, 1], 1)]]), formats: [], ignored: [] };
  const b = { targets: new Map([[t, branch([1, 3], [4, 1], 2)]]), formats: [], ignored: [] };
  const c = combineLoras([{ parsed: a, strength: 1 }, { parsed: b, strength: 0.5 }]);
  assert.deepEqual(c.get(`${t}.lora_down`)!.dims, [3, 3, 1, 1]);
  assert.deepEqual([...scaledUp(c, t).subarray(0, 3)], [1, 1, 0.5]);
  assert.deepEqual([...c.get(`${t}.lora_scale`)!.data], [1, 1, 0.5]);
  const { feeds } = loraFeeds([{ name: t, kind: 'conv', inFeatures: 3, outFeatures: 4, kernel: [1, 1] }], c);
  assert.deepEqual(feeds.get(`${t}.lora_up`)!.dims, [4, 3, 1, 1]);
  const wrong = { targets: new Map([[t, branch([1, 5], [4, 1], 2)]]), formats: [], ignored: [] };
  assert.throws(() => combineLoras([{ parsed: a, strength: 1 }, { parsed: wrong, strength: 1 }]), /disagree on the shape/);
});
