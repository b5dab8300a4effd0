import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { createDemoModels } from '../../../src/engine/models/demo.ts';
import { openBaseModel, openControlNetModel } from '../../../src/engine/models/load.ts';
import { buildUNet } from '../../../src/engine/models/unet.ts';
import { buildControlNet, controlnetScales } from '../../../src/engine/models/controlnet.ts';
import { buildVaeDecoder } from '../../../src/engine/models/vae.ts';
import { buildClipText } from '../../../src/engine/models/clip-text.ts';
import { sessionFor } from './support.ts';

function du(p: string): number {
  const s = statSync(p);
  return s.isDirectory() ? readdirSync(p).reduce((n, f) => n + du(join(p, f)), 0) : s.size;
}

const randn = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.8);

test('demo models: small, fast to create, every weight consumed, networks run with latent factor 8', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'demo-'));
  try {
    const t0 = performance.now();
    const r = await createDemoModels(dir, { baseId: 'demo' });
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(seconds < 5, `created in ${seconds} s`);
    assert.equal(Object.keys(r.controlnets).length, 15);
    assert.ok(du(dir) < 8e6, `${du(dir)} bytes`);
    assert.deepEqual((await createDemoModels(dir, { baseId: 'demo' })).created, [], 'existing models are kept');

    const base = await openBaseModel(r.base);
    assert.deepEqual(base.tokenizer.encodePadded('a cat').slice(0, 3), [49406, 320, 2368]);
    const clip = await sessionFor(buildClipText(base.textEncoder.config, base.textEncoder.weights).graph);
    const ids = new BigInt64Array(77).fill(49407n);
    ids[0] = 49406n;
    ids[1] = 320n;
    const ehs = (await clip.run({ input_ids: new ort.Tensor('int64', ids, [1, 77]), skip: new ort.Tensor('int64', BigInt64Array.of(7n), []) })).hidden_states!;
    assert.deepEqual(ehs.dims, [1, 77, 16]);

    const cn = await openControlNetModel(r.controlnets.canny!);
    const cs = await sessionFor(buildControlNet(cn.config, cn.weights).graph);
    const sample = new ort.Tensor('float32', randn(4 * 8 * 8), [1, 4, 8, 8]);
    const timestep = new ort.Tensor('float32', Float32Array.of(500), [1]);
    const scales = controlnetScales(cn.config, 1, false);
    const res = await cs.run({
      sample, timestep, encoder_hidden_states: ehs, controlnet_cond: new ort.Tensor('float32', new Float32Array(3 * 64 * 64).fill(0.5), [1, 3, 64, 64]),
      conditioning_scales: new ort.Tensor('float32', scales, [scales.length]),
    });
    const unet = await sessionFor(buildUNet(base.unet.config, base.unet.weights, { controlnetInputs: true }).graph);
    const feeds: Record<string, ort.Tensor> = { sample, timestep, encoder_hidden_states: ehs, mid_block_additional_residual: res.mid_block_res_sample! };
    for (let i = 0; i < scales.length - 1; i++) feeds[`down_block_additional_residual_${i}`] = res[`down_block_res_sample_${i}`]!;
    const eps = (await unet.run(feeds)).out_sample!;
    assert.deepEqual(eps.dims, [1, 4, 8, 8]);
    const vae = await sessionFor(buildVaeDecoder(base.vae.config, base.vae.weights).graph);
    const img = (await vae.run({ latent: eps })).sample!;
    assert.deepEqual(img.dims, [1, 3, 64, 64]);
    assert.ok((img.data as Float32Array).every(Number.isFinite));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
