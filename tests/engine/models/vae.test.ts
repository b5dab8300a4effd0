import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { buildVaeDecoder, buildVaeEncoder, vaeTileSizes } from '../../../src/engine/models/vae.ts';
import { needsTiling, tiledDecode, type Tensor4 } from '../../../src/engine/models/vae-tiling.ts';
import { loadFixture, maxAbsDiff } from '../../support/fixtures.ts';
import { f32, sessionFor, tinyConfig, tinyWeights } from './support.ts';

const TOL = 1e-4;
const fx = loadFixture('tiny/vae_fwd');

test('VAE encoder mean/std equal diffusers latent_dist', async () => {
  const s = await sessionFor(buildVaeEncoder(tinyConfig('sd15/vae'), await tinyWeights('sd15/vae')).graph);
  const out = await s.run({ sample: f32(fx, 'image') });
  for (const k of ['mean', 'std']) {
    const err = maxAbsDiff(out[k]!.data as Float32Array, fx.f32(k));
    assert.ok(err <= TOL, `${k}: max abs err ${err}`);
  }
});

test('VAE decoder equals diffusers, fp32 file and fp16-only variant', async () => {
  for (const [dir, file, key] of [['sd15/vae', undefined, 'decoded'], ['vae-fp16', 'diffusion_pytorch_model.fp16.safetensors', 'decoded_fp16']] as const) {
    const s = await sessionFor(buildVaeDecoder(tinyConfig(dir), await tinyWeights(dir, file)).graph);
    const out = await s.run({ latent: f32(fx, 'latent') });
    const err = maxAbsDiff(out.sample!.data as Float32Array, fx.f32(key));
    assert.ok(err <= TOL, `${dir}: max abs err ${err}`);
  }
});

test('tiled decode equals diffusers tiled_decode (blending, cropping)', async () => {
  const cfg = tinyConfig('sd15/vae');
  const sizes = vaeTileSizes(cfg);
  assert.equal(sizes.tileLatentMinSize, fx.meta.tile_latent_min_size);
  assert.equal(sizes.tileSampleMinSize, fx.meta.tile_sample_min_size);
  const s = await sessionFor(buildVaeDecoder(cfg, await tinyWeights('sd15/vae')).graph);
  const big = fx.get('big_latent');
  assert.ok(needsTiling(big.shape, sizes));
  const decode = async (t: Tensor4): Promise<Tensor4> => {
    const o = (await s.run({ latent: new ort.Tensor('float32', t.data, t.dims) })).sample!;
    return { data: o.data as Float32Array, dims: o.dims as Tensor4['dims'] };
  };
  const out = await tiledDecode({ data: fx.f32('big_latent'), dims: big.shape as Tensor4['dims'] }, decode, sizes);
  assert.deepEqual(out.dims, fx.get('big_tiled').shape);
  const err = maxAbsDiff(out.data, fx.f32('big_tiled'));
  assert.ok(err <= TOL, `max abs err ${err}`);
});
