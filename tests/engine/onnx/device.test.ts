// Device residency on the CPU provider (the code path a GPU runs, with host memory as the device): the residual ops
// compute what the host loop computed, resident tensors are not counted as copies, and a generation's denoising
// loop moves only the latents, the timesteps and the noise prediction between host and device.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceIO, DeviceOps, uploadGraph } from '../../../src/engine/onnx/device.ts';
import { ort } from '../../../src/engine/onnx/session.ts';
import { Pipeline } from '../../../src/engine/pipeline/pipeline.ts';
import { maxAbsDiff } from '../../support/fixtures.ts';
import { fx, options, toNp } from '../../support/pipeline-cases.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';
import { tinyConfig } from '../models/support.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'device-test-'));
const dataDir = tinyDataDir();
after(() => {
  rmSync(cacheDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

const rand = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 3);

test('uploads are counted once; resident feeds are not; residual sums and the zero half are computed on the device', async () => {
  const ops = new DeviceOps({ provider: 'cpu', cacheDir, threads: 1 });
  const io = new DeviceIO(ops);
  const dims = [[2, 3, 4, 4], [2, 5, 2, 2]];
  const host = (seed: number) => dims.map((d, i) => new ort.Tensor('float32', rand(d.reduce((a, b) => a * b, 1), seed + i), d));
  const a = host(1), b = host(7);
  const da = await Promise.all(a.map((t) => io.toDevice(t)));
  const bytes = a.reduce((s, t) => s + t.size * 4, 0);
  assert.equal(io.count.hostToDevice, bytes);
  assert.equal(await io.toDevice(da[0]!), da[0], 'a resident tensor is not uploaded again');
  assert.equal(io.count.hostToDevice, bytes);

  // b is fed from the host: counted at the run that reads it
  const s = await io.sum(da, b);
  assert.equal(io.count.hostToDevice, 2 * bytes);
  assert.equal(io.count.deviceToHost, 0, 'device outputs are not downloads');
  s.forEach((t, i) => {
    const want = (a[i]!.data as Float32Array).map((v, k) => Math.fround(v + (b[i]!.data as Float32Array)[k]!));
    assert.deepEqual([...t.dims], dims[i]);
    assert.equal(maxAbsDiff(t.data as Float32Array, want), 0);
    assert.ok(io.isResident(t));
  });

  const z = await io.zeroUncond(s);
  assert.equal(io.count.hostToDevice, 2 * bytes, 'resident inputs cross nothing');
  z.forEach((t, i) => {
    assert.deepEqual([...t.dims], [4, ...dims[i]!.slice(1)]);
    const half = t.size / 2;
    const d = t.data as Float32Array;
    assert.ok(d.subarray(0, half).every((v) => v === 0));
    assert.deepEqual([...d.subarray(half)], [...(s[i]!.data as Float32Array)]);
  });
  assert.equal(io.count.runs, 2);
  io.dispose();
  await ops.release();
});

test('the upload graph (used where outputs stay on the device) copies float32 tensors of any rank unchanged', async () => {
  const ops = new DeviceOps({ provider: 'cpu', cacheDir, threads: 1 });
  const s = await ops.session('upload', 1, uploadGraph);
  for (const dims of [[7], [2, 3, 4, 5], [1, 77, 8]]) {
    const x = new ort.Tensor('float32', rand(dims.reduce((a, b) => a * b, 1), dims.length), dims);
    const y = (await s.run({ x })).y!;
    assert.deepEqual([...y.dims], dims);
    assert.deepEqual([...(y.data as Float32Array)], [...(x.data as Float32Array)]);
  }
  await ops.release();
});

// One latent [B, 4, h, w] up and one noise prediction down per UNet evaluation, plus the float32 timestep vectors
// and the 8-byte ToMe ratio;
// the ControlNet residuals (13 tensors per ControlNet at SD 1.5 size: ~54 MB per step at 512×512, batch 2) stay.
const pipeline = await Pipeline.create({ dataDir, threads: 1, tomeUseRand: false });
for (const name of ['multi', 'lora', 'guess']) {
  const c = fx.meta.cases[name];
  test(`${name}: equals diffusers, and per step only latents, timesteps and the prediction cross`, async (t) => {
    const { pixels } = await pipeline.generateRaw(options(c));
    assert.ok(maxAbsDiff(toNp(pixels, c.samples), fx.f32(`out.${name}`)) <= 2e-3);
    const tr = pipeline.lastTransfers!;
    const { width: W, height: H } = fx.meta;
    const vf = 2 ** (tinyConfig('sd15/vae').block_out_channels.length - 1); // the VAE's scale factor (2 for the tiny one)
    const latent = c.samples * 4 * (H / vf) * (W / vf) * 4; // bytes of one sample batch of latents
    const B = 2 * c.samples; // CFG
    const controls = c.scales.length;
    const ctrlBatch = c.guess_mode ? c.samples : B;
    // + the ToMe ratio, a float64 scalar input of the one UNet graph (0 = off), fed from the host at each run
    const up = B * latent / c.samples + B * 4 + controls * ctrlBatch * 4 + (c.guess_mode ? latent : 0) + 8;
    const down = B * latent / c.samples;
    t.diagnostic(`per step: ${tr.hostToDevicePerStep} B up, ${tr.deviceToHostPerStep} B down; setup ${tr.setupHostToDevice} B`);
    assert.equal(tr.steps, c.steps);
    assert.equal(tr.hostToDevicePerStep, up);
    assert.equal(tr.deviceToHostPerStep, down);
    assert.ok(tr.setupHostToDevice > 0, 'embeddings, hints and scales are uploaded once, before the loop');
  });
}
