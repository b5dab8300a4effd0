// The UNet built with token merging against tomesd 0.1.3 on diffusers (tools/oracle/networks_tome.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { buildUNet } from '../../../src/engine/models/unet.ts';
import { TOME_RAND_INPUT, TOME_RATIO_INPUT, tomeMergeFnsFedRand, tomeRandTable } from '../../../src/engine/models/tome.ts';
import { loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { f32, sessionFor, tinyConfig, tinyWeights } from './support.ts';

for (const [key, useRand] of [['out_norand', false], ['out_rand', true]] as const) {
  test(`UNet with ToMe (ratio 0.5, max_downsample 1, use_rand ${useRand}) equals tomesd`, async () => {
    const fx = loadFixture('tiny/unet_tome_fwd');
    const src = await tinyWeights('sd15/unet', 'diffusion_pytorch_model.fp16.safetensors');
    const tome = { ratio: 0.5, maxDownsample: 1, sx: 2, sy: 2, useRand, seed: fx.meta.seed as number };
    const s = await sessionFor(buildUNet(tinyConfig('sd15/unet'), src, { tome }).graph);
    const out = await s.run({ sample: f32(fx, 'sample'), timestep: f32(fx, 'timestep'), encoder_hidden_states: f32(fx, 'encoder_hidden_states') });
    const got = out.out_sample!.data as Float32Array;
    assert.ok(maxAbsDiff(got, fx.f32('out_plain')) > 1e-2, 'merging must change the output');
    const err = maxAbsDiff(got, fx.f32(key));
    assert.ok(err <= 1e-4, `max abs err ${err}`);
  });
}

test('one UNet graph for ToMe on and off: tome_ratio 0.5 equals tomesd, tome_ratio 0 equals the plain UNet', async () => {
  const fx = loadFixture('tiny/unet_tome_fwd');
  const src = await tinyWeights('sd15/unet', 'diffusion_pytorch_model.fp16.safetensors');
  const seed = fx.meta.seed as number;
  for (const useRand of [false, true]) {
    const tome = { ratio: 0, maxDownsample: 1, sx: 2, sy: 2, useRand, seed, switchable: true, mergeFns: tomeMergeFnsFedRand };
    const graph = buildUNet(tinyConfig('sd15/unet'), src, { tome }).graph;
    assert.ok(graph.nodes.some((n) => n.opType === 'If'), 'merging sits in If branches');
    const s = await sessionFor(graph);
    const [, , h, w] = fx.get('sample').shape as number[];
    const cells = Math.max(1, Math.floor(h! / 2) * Math.floor(w! / 2));
    const run = async (ratio: number) => (await s.run({
      sample: f32(fx, 'sample'), timestep: f32(fx, 'timestep'), encoder_hidden_states: f32(fx, 'encoder_hidden_states'),
      [TOME_RATIO_INPUT]: new ort.Tensor('float64', Float64Array.of(ratio), []),
      ...(useRand ? { [TOME_RAND_INPUT]: new ort.Tensor('int64', tomeRandTable(seed, 2, 2, cells), [cells]) } : {}),
    })).out_sample!.data as Float32Array;
    const on = await run(0.5);
    const errOn = maxAbsDiff(on, fx.f32(useRand ? 'out_rand' : 'out_norand'));
    assert.ok(errOn <= 1e-4, `use_rand ${useRand}, ratio 0.5: max abs err ${errOn}`);
    const off = await run(0);
    const errOff = maxAbsDiff(off, fx.f32('out_plain'));
    assert.ok(errOff <= 1e-4, `use_rand ${useRand}, ratio 0: max abs err ${errOff}`);
    assert.ok(maxAbsDiff(on, off) > 1e-2, 'the ratio input switches merging');
    await s.release();
  }
});
