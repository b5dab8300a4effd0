// One CFG step of SD 1.5 + one ControlNet at 512×512 (batch 2), ours (ONNX Runtime) against diffusers on the
// torch CPU in the same run, on the same full-size random weights. Also: this machine's Conv / MatMul peak in
// ONNX Runtime, and graph build + load times on a first and a second start (the compiled cache).
// Each side runs in its own process, interleaved (torch, ours, torch, ours … --rounds times, --repeats timed steps
// each after a warm-up), and reports its peak resident memory (getrusage): min and median step times and both
// peaks are printed side by side, with the weights' size.
// Run: node --import tsx bench/unet-step.ts [--keep DIR] [--no-lora] [--arena] [--repeats N] [--rounds N] [--threads N]
// (our step process runs with ONNX Runtime's CPU arena off, the product's default; --arena turns it on, as
// ENGINE_CPU_MEM_ARENA=1)
// Heavy: ≈ 5 GB of weights written twice, several minutes on 2 cores.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder } from '../src/engine/onnx/graph.ts';
import { writeModel } from '../src/engine/onnx/serialize.ts';
import { createSession, ort, type RuntimeOptions } from '../src/engine/onnx/session.ts';
import { compileNetwork, openComponent, openControlNetModel } from '../src/engine/models/load.ts';
import type { LoraSlot } from '../src/engine/models/lora-slots.ts';
import { loraFeeds } from '../src/engine/lora/combine.ts';
import { controlnetScales } from '../src/engine/models/controlnet.ts';

const STEP_TFLOP = 2.17; // one CFG step (batch 2) of SD 1.5 + one ControlNet at 512×512
const args = process.argv.slice(2);
const opt = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const repeats = Number(opt('--repeats') ?? 1);
const lora = !args.includes('--no-lora');
const arena = args.includes('--arena');
const keep = opt('--keep');
const childOurs = opt('--child-ours');
const rounds = Number(opt('--rounds') ?? 2);
const work = childOurs ?? keep ?? mkdtempSync(join(tmpdir(), 'bench-unet-step-'));
const VENV = process.env.ORACLE_VENV ?? join(process.env.HOME ?? '/root', '.cache', 'controlnet-oracle-venv');
const THREADS = Number(opt('--threads') ?? 2); // the same for both sides (torch.set_num_threads)
const rt: RuntimeOptions = { provider: 'cpu', threads: THREADS, cacheDir: join(work, 'cache'), allowSpinning: process.env.ENGINE_ALLOW_SPINNING === '1', cpuMemArena: arena };
const now = () => performance.now() / 1000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median seconds of `run` after one warm-up. */
async function timeIt(run: () => Promise<unknown>, n: number): Promise<number> {
  await run();
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await run();
    ts.push(now() - t0);
  }
  return median(ts);
}

function randomF32(n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    a[i] = (s / 4294967296 - 0.5) * 2 * scale;
  }
  return a;
}

/** GFLOP/s of a single op graph (3×3 Conv 320→320 at 64×64 batch 2; MatMul 4096×1280×1280). */
async function peak(): Promise<{ conv: number; matmul: number }> {
  const dir = join(work, 'peak');
  const conv = new GraphBuilder('conv');
  conv.output(conv.op('Conv', [conv.input('x', 'float32', [2, 320, 64, 64]), conv.weight('w', 'float32', [320, 320, 3, 3], randomF32(320 * 320 * 9, 0.02))], { pads: [1, 1, 1, 1] }), 'y', 'float32', [2, 320, 64, 64]);
  const mm = new GraphBuilder('matmul');
  mm.output(mm.op('MatMul', [mm.input('x', 'float32', [4096, 1280]), mm.weight('w', 'float32', [1280, 1280], randomF32(1280 * 1280, 0.02))]), 'y', 'float32', [4096, 1280]);
  mkdirSync(dir, { recursive: true });
  await writeModel(conv, join(dir, 'conv.onnx'));
  await writeModel(mm, join(dir, 'matmul.onnx'));
  const cs = await createSession(join(dir, 'conv.onnx'), rt);
  const ms = await createSession(join(dir, 'matmul.onnx'), rt);
  const x1 = new ort.Tensor('float32', randomF32(2 * 320 * 64 * 64, 1), [2, 320, 64, 64]);
  const x2 = new ort.Tensor('float32', randomF32(4096 * 1280, 1), [4096, 1280]);
  const tc = await timeIt(() => cs.run({ x: x1 }), 5);
  const tm = await timeIt(() => ms.run({ x: x2 }), 5);
  await cs.release();
  await ms.release();
  return { conv: (2 * 2 * 320 * 320 * 9 * 64 * 64) / tc / 1e9, matmul: (2 * 4096 * 1280 * 1280) / tm / 1e9 };
}

interface TorchResult {
  torch: string; threads: number; create_and_save_s: number; warmup_step_s: number; step_s: number[];
  io: Record<string, { shape: number[]; offset: number; length: number }>;
}

function runTorch(): TorchResult {
  const file = join(work, 'torch_result.json');
  if (!(keep && existsSync(file))) {
    const py = join(VENV, 'bin', 'python');
    const r = spawnSync(py, [join(import.meta.dirname, 'unet_step_torch.py'), '--out', work, '--repeats', '0', '--threads', String(THREADS)], {
      stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, PYTHONWARNINGS: 'ignore' },
    });
    if (r.status !== 0) throw new Error(`torch reference failed (${py}): exit ${r.status}`);
  }
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** Our step process: loads the compiled graphs, one warm-up step, `repeats` timed steps; its peak RSS. */
async function oursChild(): Promise<void> {
  const torch = JSON.parse(readFileSync(join(work, 'torch_result.json'), 'utf8')) as TorchResult;
  const io = readFileSync(join(work, 'io.bin'));
  const tensor = (k: string) => {
    const h = torch.io[k]!;
    const copy = new Float32Array(h.length / 4);
    new Uint8Array(copy.buffer).set(io.subarray(h.offset, h.offset + h.length));
    return new ort.Tensor('float32', copy, h.shape);
  };
  const unetSrc = await openComponent(join(work, 'unet'));
  const cnSrc = await openControlNetModel(join(work, 'controlnet'));
  const unetC = await compileNetwork(rt.cacheDir, 'unet', unetSrc, { lora, unet: { controlnetInputs: true } });
  const cnC = await compileNetwork(rt.cacheDir, 'controlnet', cnSrc);
  if (unetC.built || cnC.built) throw new Error('the step process rebuilt a graph: the cache key is unstable');
  let t0 = now();
  const unet = await createSession(unetC.path, rt);
  const cn = await createSession(cnC.path, rt);
  const loadS = now() - t0;
  const slots = (unetC.info as { loraSlots?: LoraSlot[] } | undefined)?.loraSlots ?? [];
  const scales = controlnetScales(cnSrc.config, 1, false);
  const base = { sample: tensor('sample'), timestep: tensor('timestep'), encoder_hidden_states: tensor('encoder_hidden_states') };
  let out: Float32Array | undefined;
  const step = async () => {
    const r = await cn.run({ ...base, controlnet_cond: tensor('controlnet_cond'), conditioning_scales: new ort.Tensor('float32', scales, [scales.length]) });
    const feeds: Record<string, ort.Tensor> = { ...base, ...(lora ? Object.fromEntries([...loraFeeds(slots, new Map(), { emptyRank: 0 }).feeds].map(([k, t]) => [k, new ort.Tensor('float32', t.data, t.dims)])) : {}), mid_block_additional_residual: r.mid_block_res_sample! };
    for (let i = 0; i < scales.length - 1; i++) feeds[`down_block_additional_residual_${i}`] = r[`down_block_res_sample_${i}`]!;
    out = (await unet.run(feeds)).out_sample!.data as Float32Array;
  };
  t0 = now();
  await step();
  const firstStepS = now() - t0;
  const stepS: number[] = [];
  for (let i = 0; i < repeats; i++) {
    t0 = now();
    await step();
    stepS.push(now() - t0);
  }
  const ref = tensor('out').data as Float32Array;
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(out![i]! - ref[i]!));
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  }
  // maxRSS: kilobytes (libuv's getrusage)
  console.log(JSON.stringify({ loadS, firstStepS, stepS, peakRssMB: process.resourceUsage().maxRSS / 1024, maxErr, maxRef }));
}

function child(cmd: string, cmdArgs: string[], env: NodeJS.ProcessEnv = process.env): any {
  const r = spawnSync(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(' ')}: exit ${r.status}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

const stats = (xs: number[]) => ({ min: Math.min(...xs), median: median(xs), all: xs });

async function main(): Promise<void> {
  console.error(`work dir ${work}`);
  runTorch(); // the full-size random weights (diffusers folders) and the step's inputs and output

  // first start: build + write both graphs; a second start finds them in the cache
  const unetSrc = await openComponent(join(work, 'unet'));
  const cnSrc = await openControlNetModel(join(work, 'controlnet'));
  let t0 = now();
  await compileNetwork(rt.cacheDir, 'unet', unetSrc, { lora, unet: { controlnetInputs: true } });
  await compileNetwork(rt.cacheDir, 'controlnet', cnSrc);
  const buildS = now() - t0;
  t0 = now();
  const unetC2 = await compileNetwork(rt.cacheDir, 'unet', unetSrc, { lora, unet: { controlnetInputs: true } });
  const cnC2 = await compileNetwork(rt.cacheDir, 'controlnet', cnSrc);
  const hitS = now() - t0;
  if (unetC2.built || cnC2.built) throw new Error('second start rebuilt a graph: the cache key is unstable');
  const weightsMB = (['unet', 'controlnet'] as const).reduce((a, d) => a + readdirSync(join(work, d)).filter((f) => f.endsWith('.safetensors'))
    .reduce((b, f) => b + statSync(join(work, d, f)).size, 0), 0) / 2 ** 20;

  // A B A B …: each side in its own process (one at a time in memory), so load on a shared machine hits both alike
  const py = join(VENV, 'bin', 'python');
  const ours: any[] = [];
  const theirs: any[] = [];
  for (let r = 0; r < rounds; r++) {
    theirs.push(child(py, [join(import.meta.dirname, 'unet_step_torch.py'), '--out', work, '--repeats', String(repeats), '--threads', String(THREADS), '--step-only'],
      { ...process.env, PYTHONWARNINGS: 'ignore' }));
    ours.push(child(process.execPath, ['--import', 'tsx', import.meta.filename, '--child-ours', work, '--repeats', String(repeats), '--threads', String(THREADS), ...(lora ? [] : ['--no-lora']), ...(arena ? ['--arena'] : [])]));
  }
  const p = await peak();
  const o = stats(ours.flatMap((x) => x.stepS)), t = stats(theirs.flatMap((x) => x.step_s));
  const oursPeak = Math.max(...ours.map((x) => x.peakRssMB)), torchPeak = Math.max(...theirs.map((x) => x.peak_rss_mb));
  console.log(JSON.stringify({
    config: { batch: 2, size: 512, controlnets: 1, unetGraph: lora ? 'lora slots (zeros: linear rank 0, conv rank 1) + controlnet inputs' : 'controlnet inputs', repeats, rounds, threads: THREADS, cpuMemArena: arena },
    ours: { stepSeconds: o, gflopsAtMedian: (STEP_TFLOP * 1000) / o.median, loadSeconds: ours.map((x) => x.loadS), firstStepSeconds: ours.map((x) => x.firstStepS) },
    torch: { stepSeconds: t },
    ratioOursOverTorch: { min: o.min / t.min, median: o.median / t.median },
    peakRssMB: { ours: oursPeak, torch: torchPeak, weightsMB, oursOverTorch: oursPeak / torchPeak, oursOverWeights: oursPeak / weightsMB },
    outputMaxAbsDiff: ours[0].maxErr, outputMaxAbs: ours[0].maxRef,
    peakGflops: p,
    start: { firstBuildAndWriteSeconds: buildS, secondCacheLookupSeconds: hitS },
  }, null, 1));
}

if (childOurs) {
  await oursChild();
} else {
  try {
    await main();
  } finally {
    if (!keep) rmSync(work, { recursive: true, force: true });
  }
}
