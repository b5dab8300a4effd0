// The engine half of bench/gpu.sh: the same CFG step as bench/gpu/diffusers_step.py (batch 2: ControlNet, then the
// UNet with its residuals) on the weights that script saved, built by our graph builder in fp16 as the product builds
// them for the provider (precision.ts defaultFp32Islands: every Conv in float32 on webgpu) and run on one
// execution provider with the generation's tensors on the device (onnx/device.ts). Prints one JSON line: build and
// load times, the float32 islands used, median seconds per step, host↔device bytes per step, and the output's relative L2 difference from
// diffusers fp16 and fp32 and, with --fp32, from our own fp32 graphs.
// Run: node --import tsx bench/gpu/engine-step.ts --work DIR [--provider webgpu|cpu] [--repeats N] [--fp32]
//   --save-fp16 keeps our fp16 output in DIR/ours_fp16.bin; --fp32-only then builds and runs the fp32 graphs alone
//   (a second process, so that the fp16 run's peak memory is its own) and compares with that file.
//   --fp32-islands LIST (comma-separated FP32_ISLANDS, or none) replaces the provider's default islands of the fp16
//   graphs: bench/gpu.sh --cpu-smoke passes conv, so the CPU smoke run builds what the WebGPU run builds.
// (bench/gpu.sh runs an esbuild bundle of this file, so that the GPU machine needs no tsx.)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlnetScales } from '../../src/engine/models/controlnet.ts';
import { compileNetwork, openComponent, openControlNetModel } from '../../src/engine/models/load.ts';
import { DeviceIO, DeviceOps } from '../../src/engine/onnx/device.ts';
import { defaultFp32Islands, FP32_ISLANDS, type Fp32Island, type Precision } from '../../src/engine/onnx/precision.ts';
import { assertProviderAvailable, createSession, ort, parseProvider, type RuntimeOptions } from '../../src/engine/onnx/session.ts';
import { DiffusersIO, median, relL2 } from './step-io.ts';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const work = opt('--work');
if (!work) throw new Error('--work DIR (the folder bench/gpu/diffusers_step.py wrote) is required');
const provider = parseProvider(opt('--provider') ?? 'webgpu');
const repeats = Number(opt('--repeats') ?? 20);
const now = (): number => performance.now() / 1000;
const islandsArg = opt('--fp32-islands');
const islandsOverride: Fp32Island[] | undefined = islandsArg === undefined ? undefined
  : islandsArg === 'none' ? [] : islandsArg.split(',').map((s) => {
    if (!(FP32_ISLANDS as readonly string[]).includes(s)) throw new Error(`--fp32-islands: ${s} is none of ${FP32_ISLANDS.join(', ')}`);
    return s as Fp32Island;
  });

const dio = new DiffusersIO(work);
const host = (k: string): ort.Tensor => dio.host(k);

/** Builds (or finds) both graphs at a precision, loads them, runs warm-up + timed steps; returns the last output. */
async function run(precision: Precision, timed: number): Promise<Record<string, unknown> & { out: Float32Array }> {
  // as Pipeline.create chooses them (islands only change float16 graphs)
  const fp32Islands = precision === 'fp16' && islandsOverride ? islandsOverride : defaultFp32Islands(provider, precision);
  const rt: RuntimeOptions = { provider, threads: 0, cacheDir: join(work!, 'cache'), precision, fp32Islands };
  const unetSrc = await openComponent(join(work!, 'unet'));
  const cnSrc = await openControlNetModel(join(work!, 'controlnet'));
  let t0 = now();
  const unetC = await compileNetwork(rt.cacheDir, 'unet', unetSrc, { unet: { controlnetInputs: true }, precision, fp32Islands: rt.fp32Islands });
  const cnC = await compileNetwork(rt.cacheDir, 'controlnet', cnSrc, { precision, fp32Islands: rt.fp32Islands });
  const buildS = now() - t0;
  t0 = now();
  const unet = await createSession(unetC.path, rt);
  const cn = await createSession(cnC.path, rt, { outputsOnDevice: true });
  const loadS = now() - t0;
  const ops = new DeviceOps(rt);
  const io = new DeviceIO(ops);
  const scales = controlnetScales(cnSrc.config, 1, false);
  const ehs = await io.toDevice(host('encoder_hidden_states'));
  const cond = await io.toDevice(host('controlnet_cond'));
  const sc = await io.toDevice(new ort.Tensor('float32', scales, [scales.length]));
  const sampleHost = host('sample');
  const tHost = host('timestep');
  let out: Float32Array = new Float32Array(0);
  // as the pipeline's step: upload the latents, ControlNet outputs stay on the device, the prediction comes back
  const step = async (): Promise<void> => {
    const sample = await io.toDevice(new ort.Tensor('float32', sampleHost.data as Float32Array, sampleHost.dims));
    const r = await io.run(cn, { sample, timestep: tHost, encoder_hidden_states: ehs, controlnet_cond: cond, conditioning_scales: sc }, true);
    const feeds: Record<string, ort.Tensor> = { sample, timestep: tHost, encoder_hidden_states: ehs, mid_block_additional_residual: r.mid_block_res_sample! };
    for (let i = 0; i < scales.length - 1; i++) feeds[`down_block_additional_residual_${i}`] = r[`down_block_res_sample_${i}`]!;
    out = (await io.run(unet, feeds)).out_sample!.data as Float32Array;
    io.disposeAll([sample, ...Object.values(r)]);
  };
  t0 = now();
  await step();
  const firstS = now() - t0;
  await step();
  const before = { ...io.count };
  const times: number[] = [];
  for (let i = 0; i < timed; i++) {
    t0 = now();
    await step();
    times.push(now() - t0);
  }
  const n = Math.max(1, timed);
  const result = {
    precision, fp32Islands: rt.fp32Islands, buildS, built: unetC.built || cnC.built, loadS, firstStepS: firstS,
    stepSMedian: timed ? median(times) : undefined, stepS: times,
    hostToDevicePerStep: (io.count.hostToDevice - before.hostToDevice) / n, deviceToHostPerStep: (io.count.deviceToHost - before.deviceToHost) / n,
    out,
  };
  io.dispose();
  await ops.release();
  await unet.release();
  await cn.release();
  return result;
}

await assertProviderAvailable(provider, join(work, 'cache'));
const ref16 = host('out_fp16').data as Float32Array;
const ref32 = host('out_fp32').data as Float32Array;
const report: Record<string, unknown> = { provider, ortVersion: ort.env.versions.common };
const savedFp16 = join(work, 'ours_fp16.bin');
let out16: Float32Array;
if (args.includes('--fp32-only')) {
  const b = readFileSync(savedFp16);
  out16 = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
} else {
  const fp16 = await run('fp16', repeats);
  out16 = fp16.out;
  if (args.includes('--save-fp16')) writeFileSync(savedFp16, new Uint8Array(out16.buffer, out16.byteOffset, out16.byteLength));
  report.fp16 = { ...fp16, out: undefined, relL2VsDiffusersFp16: relL2(out16, ref16), relL2VsDiffusersFp32: relL2(out16, ref32) };
}
if (args.includes('--fp32') || args.includes('--fp32-only')) {
  const fp32 = await run('fp32', 0);
  report.fp32 = { ...fp32, out: undefined, hostToDevicePerStep: undefined, deviceToHostPerStep: undefined, relL2VsDiffusersFp32: relL2(fp32.out, ref32) };
  report.fp16VsFp32RelL2 = relL2(out16, fp32.out);
}
console.log(JSON.stringify(report));
