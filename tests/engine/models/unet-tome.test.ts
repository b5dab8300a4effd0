// The UNet built with token merging against tomesd 0.1.3 on diffusers (tools/oracle/networks_tome.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildUNet } from '../../../src/engine/models/unet.ts';
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
