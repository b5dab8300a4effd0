// The engine half of `bench/gpu.sh --diagnose`: where our CFG step's time goes and which float16 ops lose precision,
// on the weights and references bench/gpu/diffusers_step.py --diagnose saved (fp32 ControlNet residuals among them).
// Writes one JSON line per finding to --jsonl (and a short line to stdout), in this order:
//   1. the plain fp16 graphs (no extra float32 islands, so the islands below are measured against them; the product's
//      WebGPU default, the `conv` island, is the `conv` variant): seconds per step of ControlNet + UNet, of ControlNet alone (until its residuals are
//      done on the device) and of the UNet alone (fed diffusers' fp32 residuals, uploaded once); the relative L2
//      difference from diffusers fp32 of the whole step's output, of ControlNet's residuals (all together) and of the
//      UNet alone's output;
//   2. WebGPU EP settings on the default fp16 UNet alone, each in a child process of this script (--session-variant:
//      preferredLayout NCHW, validationMode disabled): s/step and relative L2; then
//      UNet-alone variants: the fp16 graph with more float32 islands (precision.ts FP32_ISLANDS, one family each, all
//      together) and the fp32 graph, each built, loaded and timed (relative L2 from diffusers fp32 and s/step), in
//      order, while --deadline-s leaves time for one more (the slowest so far, +10%) and for the profile;
//   3. an ONNX Runtime profile of a few steps on fresh sessions (enableProfiling): nodes per execution provider (any
//      node not on the requested provider is a fallback, with copies around it), op types by CPU-side kernel time
//      (the "Node" events; on webgpu that is the time to record and dispatch, not to compute) and, where the WebGPU
//      EP records timestamp queries ("Api" events named node&op&program), op types and shader programs by GPU time.
// Run: node --import tsx bench/gpu/engine-diagnose.ts --work DIR [--provider webgpu|cpu] [--repeats N]
//        [--deadline-s S] [--jsonl FILE] [--variants linear,conv,attention,all,norm,fp32] [--profile-steps N]
//        [--session-variants nchw,no-validation]
// (bench/gpu.sh runs an esbuild bundle of this file, .gpu/engine-diagnose.mjs.)
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlnetScales } from '../../src/engine/models/controlnet.ts';
import { compileNetwork, openComponent, openControlNetModel } from '../../src/engine/models/load.ts';
import { DeviceIO, DeviceOps } from '../../src/engine/onnx/device.ts';
import { GraphBuilder } from '../../src/engine/onnx/graph.ts';
import { FP32_ISLANDS, type Fp32Island } from '../../src/engine/onnx/precision.ts';
import { writeModel } from '../../src/engine/onnx/serialize.ts';
import { assertProviderAvailable, createSession, ort, parseProvider, sessionOptions, type RuntimeOptions } from '../../src/engine/onnx/session.ts';
import { summarizeProfile } from './profile-summary.ts';
import { DiffusersIO, median, relL2 } from './step-io.ts';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const work = opt('--work');
if (!work) throw new Error('--work DIR (the folder bench/gpu/diffusers_step.py --diagnose wrote) is required');
const provider = parseProvider(opt('--provider') ?? 'webgpu');
const repeats = Number(opt('--repeats') ?? 5);
const deadlineS = Number(opt('--deadline-s') ?? 150);
const profileSteps = Number(opt('--profile-steps') ?? 3);
const jsonl = opt('--jsonl') ?? join(work, 'diagnose.jsonl');
const variantNames = (opt('--variants') ?? 'linear,conv,attention,all,norm,fp32').split(',').filter(Boolean);
const now = (): number => performance.now() / 1000;
const T0 = now();
const elapsed = (): number => now() - T0;
const childVariant = opt('--session-variant');
if (!childVariant) writeFileSync(jsonl, '');

/** Appends one finding to the JSON lines file and prints it, long lists left out, on stdout. */
function emit(rec: Record<string, unknown>): void {
  const full = { ...rec, atS: Number(elapsed().toFixed(1)) };
  appendFileSync(jsonl, `${JSON.stringify(full)}\n`);
  const fmt = (v: unknown): string => (typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(4) : typeof v === 'object' ? JSON.stringify(v) : String(v));
  console.log(`diagnose ${Object.entries(full).filter(([k, v]) => !Array.isArray(v) && k !== 'file' && (typeof v !== 'object' || v === null || Object.keys(v).length <= 4))
    .map(([k, v]) => `${k}=${fmt(v)}`).join(' ')}`);
}

const dio = new DiffusersIO(work);
if (!dio.has('res_mid')) throw new Error('io.bin has no fp32 residuals: run bench/gpu/diffusers_step.py with --diagnose');
const cacheDir = join(work, 'cache');
const rtOf = (precision: 'fp16' | 'fp32'): RuntimeOptions => ({ provider, threads: 0, cacheDir, precision });
const rt16 = rtOf('fp16');
const ref32 = dio.host('out_fp32').data as Float32Array;
const unetSrc = await openComponent(join(work, 'unet'));
const cnSrc = await openControlNetModel(join(work, 'controlnet'));
const scales = controlnetScales(cnSrc.config, 1, false);
const nDown = scales.length - 1;
const residualRefs = [...Array.from({ length: nDown }, (_, i) => dio.host(`res_down_${i}`)), dio.host('res_mid')];

/** Identity over `count` float32 tensors of any shape; run without outputsOnDevice, it brings device tensors to the host. */
function downloadGraph(count: number): GraphBuilder {
  const g = new GraphBuilder('download');
  for (let i = 0; i < count; i++) g.output(g.op('Identity', [g.input(`x_${i}`, 'float32', [])]), `y_${i}`, 'float32');
  for (const input of g.inputs) input.shape = undefined;
  return g;
}
const downloads = new Map<number, Promise<ort.InferenceSession>>();
/** The host copies of device tensors (the device queue runs in order, so this also waits for the work behind them). */
async function toHost(ts: ort.Tensor[]): Promise<Float32Array[]> {
  let s = downloads.get(ts.length);
  if (!s) {
    s = (async () => {
      const dir = join(cacheDir, 'device');
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `download-${ts.length}.onnx`);
      if (!existsSync(file)) await writeModel(downloadGraph(ts.length), file);
      return createSession(file, rt16);
    })();
    downloads.set(ts.length, s);
  }
  const feeds: Record<string, ort.Tensor> = {};
  ts.forEach((t, i) => { feeds[`x_${i}`] = t; });
  const out = await (await s).run(feeds);
  return ts.map((_, i) => out[`y_${i}`]!.data as Float32Array);
}

/** The device-resident inputs every run reuses. */
async function deviceInputs(io: DeviceIO): Promise<Record<string, ort.Tensor>> {
  return {
    sample: await io.toDevice(dio.host('sample')),
    encoder_hidden_states: await io.toDevice(dio.host('encoder_hidden_states')),
    controlnet_cond: await io.toDevice(dio.host('controlnet_cond')),
    conditioning_scales: await io.toDevice(new ort.Tensor('float32', scales, [scales.length])),
    res: await io.toDevice(residualRefs[nDown]!),
    ...Object.fromEntries(await Promise.all(residualRefs.slice(0, nDown).map(async (t, i) => [`res_${i}`, await io.toDevice(t)]))),
  };
}

const cnFeeds = (d: Record<string, ort.Tensor>): Record<string, ort.Tensor> => ({
  sample: d.sample!, timestep: dio.host('timestep'), encoder_hidden_states: d.encoder_hidden_states!, controlnet_cond: d.controlnet_cond!,
  conditioning_scales: d.conditioning_scales!,
});
/** UNet feeds with the given residuals (ControlNet's outputs), or diffusers' fp32 residuals when none are given. */
function unetFeeds(d: Record<string, ort.Tensor>, r?: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
  const f: Record<string, ort.Tensor> = {
    sample: d.sample!, timestep: dio.host('timestep'), encoder_hidden_states: d.encoder_hidden_states!,
    mid_block_additional_residual: r ? r.mid_block_res_sample! : d.res!,
  };
  for (let i = 0; i < nDown; i++) f[`down_block_additional_residual_${i}`] = r ? r[`down_block_res_sample_${i}`]! : d[`res_${i}`]!;
  return f;
}

async function timed(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await fn();
    ts.push(now() - t0);
  }
  return ts;
}

/**
 * WebGPU EP settings tried on the default fp16 UNet (no rebuild). Each runs in a child process: validationMode belongs
 * to the WebGPU context, which the first session of a process creates for all.
 * On cpu the same flow runs with the plain options (nothing to vary there), so --cpu-smoke exercises it.
 */
const SESSION_VARIANTS: Record<string, { about: string; options: (base: ort.InferenceSession.SessionOptions) => ort.InferenceSession.SessionOptions }> = {
  nchw: { about: 'preferredLayout NCHW (the native EP defaults to NHWC: Transposes around Conv)', options: (b) => ({ ...b, executionProviders: [{ name: 'webgpu', preferredLayout: 'NCHW' }] }) },
  'no-validation': { about: 'validationMode disabled (Dawn skips per-call validation)', options: (b) => ({ ...b, executionProviders: [{ name: 'webgpu', validationMode: 'disabled' } as ort.InferenceSession.ExecutionProviderConfig] }) },
  // (maxNumPendingDispatches cannot be set from Node: the binding passes only the options it knows to the EP, and
  // the EP reads its settings when it is appended, before sessionOptions.extra is applied)
};
const sessionVariantNames = (opt('--session-variants') ?? Object.keys(SESSION_VARIANTS).join(',')).split(',').filter(Boolean);

if (childVariant) {
  // a child: one UNet-alone timing of --model under one session variant, one JSON line on stdout
  const v = SESSION_VARIANTS[childVariant];
  if (!v) throw new Error(`--session-variant: ${childVariant} is none of ${Object.keys(SESSION_VARIANTS).join(', ')}`);
  const base = sessionOptions(rt16);
  let t = now();
  const s = await ort.InferenceSession.create(opt('--model')!, provider === 'webgpu' ? v.options(base) : base);
  const loadS = now() - t;
  const ops = new DeviceOps(rt16);
  const io = new DeviceIO(ops);
  const d = await deviceInputs(io);
  let out: Float32Array = new Float32Array(0);
  const run = async (): Promise<void> => { out = (await io.run(s, unetFeeds(d))).out_sample!.data as Float32Array; };
  t = now();
  await run();
  const firstS = now() - t;
  const ts = await timed(repeats, run);
  console.log(JSON.stringify({ diag: 'session-variant', name: childVariant, about: v.about, applied: provider === 'webgpu', loadS, firstS, stepSMedian: median(ts), stepS: ts, relL2VsDiffusersFp32: relL2(out, ref32) }));
  process.exit(0);
}

/** Runs this script as a child for one session variant; its JSON line, or an error record. */
function runSessionVariant(name: string, model: string, timeoutS: number): Record<string, unknown> {
  const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, '--work', work!, '--provider', provider, '--repeats', String(repeats),
    '--session-variant', name, '--model', model], { encoding: 'utf8', timeout: timeoutS * 1000 });
  const line = r.stdout?.split('\n').find((l) => l.startsWith('{"diag":"session-variant"'));
  if (r.status === 0 && line) return JSON.parse(line);
  return { diag: 'session-variant', name, error: `exit ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}` };
}

await assertProviderAvailable(provider, cacheDir);
emit({ diag: 'env', provider, ortVersion: ort.env.versions.common, repeats, deadlineS, variants: variantNames.join(','), sessionVariants: sessionVariantNames.join(',') });

// 1. the default fp16 graphs
let t0 = now();
const cnC = await compileNetwork(cacheDir, 'controlnet', cnSrc, { precision: 'fp16' });
const cnBuildS = now() - t0;
t0 = now();
const unetC = await compileNetwork(cacheDir, 'unet', unetSrc, { unet: { controlnetInputs: true }, precision: 'fp16' });
const unetBuildS = now() - t0;
t0 = now();
const cn = await createSession(cnC.path, rt16, { outputsOnDevice: true });
const cnLoadS = now() - t0;
t0 = now();
const unet = await createSession(unetC.path, rt16);
const unetLoadS = now() - t0;
emit({ diag: 'build', network: 'controlnet', precision: 'fp16', buildS: cnBuildS, loadS: cnLoadS });
emit({ diag: 'build', network: 'unet', precision: 'fp16', buildS: unetBuildS, loadS: unetLoadS });
{
  const ops = new DeviceOps(rt16);
  const io = new DeviceIO(ops);
  const d = await deviceInputs(io);
  let out: Float32Array = new Float32Array(0);
  const fullStep = async (c: ort.InferenceSession, u: ort.InferenceSession): Promise<void> => {
    const r = await io.run(c, cnFeeds(d), true);
    out = (await io.run(u, unetFeeds(d, r))).out_sample!.data as Float32Array;
    io.disposeAll(Object.values(r));
  };
  t0 = now();
  await fullStep(cn, unet);
  const firstS = now() - t0;
  await fullStep(cn, unet);
  const full = await timed(repeats, () => fullStep(cn, unet));
  emit({ diag: 'time', part: 'controlnet+unet', firstStepS: firstS, stepSMedian: median(full), stepS: full });
  emit({ diag: 'precision', part: 'controlnet+unet', relL2VsDiffusersFp32: relL2(out, ref32) });
  const cnAlone = await timed(repeats, async () => {
    const r = await io.run(cn, cnFeeds(d), true);
    await toHost([r.mid_block_res_sample!]);
    io.disposeAll(Object.values(r));
  });
  emit({ diag: 'time', part: 'controlnet', stepSMedian: median(cnAlone), stepS: cnAlone, note: 'run + 1 small download to wait for the device' });
  const r = await io.run(cn, cnFeeds(d), true);
  const ours = await toHost([...Array.from({ length: nDown }, (_, i) => r[`down_block_res_sample_${i}`]!), r.mid_block_res_sample!]);
  io.disposeAll(Object.values(r));
  emit({ diag: 'precision', part: 'controlnet', relL2VsDiffusersFp32: relL2(ours, residualRefs.map((t) => t.data as Float32Array)) });
  let unetOut: Float32Array = new Float32Array(0);
  const unetAlone = await timed(repeats + 1, async () => { unetOut = (await io.run(unet, unetFeeds(d))).out_sample!.data as Float32Array; }).then((ts) => ts.slice(1));
  emit({ diag: 'time', part: 'unet', stepSMedian: median(unetAlone), stepS: unetAlone, note: 'fed diffusers fp32 residuals, on the device' });
  emit({ diag: 'precision', part: 'unet', relL2VsDiffusersFp32: relL2(unetOut, ref32) });
  emit({ diag: 'variant', name: 'fp16', islands: [], precision: 'fp16', buildS: unetBuildS, loadS: unetLoadS, stepSMedian: median(unetAlone), relL2VsDiffusersFp32: relL2(unetOut, ref32) });
  io.dispose();
  await ops.release();
  await cn.release();
  await unet.release();
}

// 2. WebGPU EP settings on the default fp16 UNet (child processes), then UNet-alone variants with more fp32 islands,
// leaving time for the profile (two session loads and a few steps)
const profileReserveS = 2 * (cnLoadS + unetLoadS) + 5;
let slowestChild = 0;
for (const name of sessionVariantNames) {
  const left = deadlineS - elapsed() - profileReserveS;
  if (left < slowestChild * 1.2 + 3) {
    emit({ diag: 'skipped', name, reason: `${left.toFixed(0)} s left before the profile's reserve` });
    continue;
  }
  const start = now();
  emit(runSessionVariant(name, unetC.path, Math.min(60, left)));
  slowestChild = Math.max(slowestChild, now() - start);
}
const variants: { name: string; islands: Fp32Island[]; precision: 'fp16' | 'fp32' }[] = variantNames.map((name) => {
  if (name === 'fp32') return { name, islands: [], precision: 'fp32' };
  if (name === 'all') return { name, islands: [...FP32_ISLANDS], precision: 'fp16' };
  if (!(FP32_ISLANDS as readonly string[]).includes(name)) throw new Error(`--variants: ${name} is none of ${FP32_ISLANDS.join(', ')}, fp32, all`);
  return { name, islands: [name as Fp32Island], precision: 'fp16' };
});
let slowest = 0;
for (const v of variants) {
  if (elapsed() + slowest * 1.1 + profileReserveS > deadlineS) {
    emit({ diag: 'skipped', name: v.name, reason: `${(deadlineS - elapsed()).toFixed(0)} s left of --deadline-s, the slowest variant took ${slowest.toFixed(0)} s, the profile needs ${profileReserveS.toFixed(0)} s` });
    continue;
  }
  const start = now();
  const rt = rtOf(v.precision);
  t0 = now();
  const c = await compileNetwork(cacheDir, 'unet', unetSrc, { unet: { controlnetInputs: true }, fp32Islands: v.islands, precision: v.precision });
  const buildS = now() - t0;
  t0 = now();
  const s = await createSession(c.path, rt);
  const loadS = now() - t0;
  const ops = new DeviceOps(rt);
  const io = new DeviceIO(ops);
  const d = await deviceInputs(io);
  let out: Float32Array = new Float32Array(0);
  const run = async (): Promise<void> => { out = (await io.run(s, unetFeeds(d))).out_sample!.data as Float32Array; };
  t0 = now();
  await run();
  const firstS = now() - t0;
  const ts = await timed(repeats, run);
  emit({ diag: 'variant', name: v.name, islands: v.islands, precision: v.precision, buildS, loadS, firstS, stepSMedian: median(ts), relL2VsDiffusersFp32: relL2(out, ref32) });
  io.dispose();
  await ops.release();
  await s.release();
  slowest = Math.max(slowest, now() - start);
}

// 3. the profile, last (a failure here loses nothing else), on fresh sessions of the default fp16 graphs
{
  const profDir = join(work, 'profile');
  mkdirSync(profDir, { recursive: true });
  const profiled = (path: string, name: string, onDevice: boolean): Promise<ort.InferenceSession> => ort.InferenceSession.create(path, {
    ...sessionOptions(rt16), enableProfiling: true, profileFilePrefix: join(profDir, name),
    ...(onDevice && provider === 'webgpu' ? { preferredOutputLocation: 'gpu-buffer' as const } : {}),
  });
  const ops = new DeviceOps(rt16);
  const io = new DeviceIO(ops);
  try {
    const d = await deviceInputs(io);
    const pc = await profiled(cnC.path, 'controlnet', true);
    const pu = await profiled(unetC.path, 'unet', false);
    for (let i = 0; i < profileSteps; i++) {
      const r = await io.run(pc, cnFeeds(d), true);
      await io.run(pu, unetFeeds(d, r));
      io.disposeAll(Object.values(r));
    }
    pc.endProfiling();
    pu.endProfiling();
    await pc.release();
    await pu.release();
    for (const network of ['controlnet', 'unet']) {
      const file = readdirSync(profDir).filter((f) => f.startsWith(`${network}_`) && f.endsWith('.json')).sort().pop();
      if (!file) {
        emit({ diag: 'profile', network, error: `no ${network}_*.json profile was written` });
        continue;
      }
      emit({ diag: 'profile', network, file: join(profDir, file), ...summarizeProfile(JSON.parse(readFileSync(join(profDir, file), 'utf8')), provider) });
    }
  } catch (e) {
    emit({ diag: 'profile', error: (e as Error).message });
  }
  io.dispose();
  await ops.release();
}
for (const s of downloads.values()) await (await s).release();
emit({ diag: 'done', totalS: elapsed() });
