// Peak resident memory of one full-size network session under ONNX Runtime's memory settings: the SD 1.5
// ControlNet (diffusers folder, e.g. the one bench/unet_step_torch.py writes) is compiled once, then each setting
// loads it in its own process (interleaved A B C … over --rounds, so load on a shared machine hits all alike) and
// runs one CFG step at 512² (batch 2). With --sessions 2 it loads the network twice and runs the two sessions one
// after the other (as a step runs the ControlNet, then the UNet, each with its own arena). Each process prints its
// RSS after the loads, its peak RSS (getrusage) after the loads and after the step, and the step's seconds.
// Settings: default (CPU arena on); initializers from the device allocator rather than the arena
// (session.use_device_allocator_for_initializers); the CPU arena off; weight prepacking off
// (session.disable_prepacking).
// Run: node --import tsx bench/session-memory.ts --controlnet DIR [--rounds 1] [--threads 2] [--sessions 1]
//        [--settings default,arenaOff] [--keep CACHE]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileNetwork, openControlNetModel } from '../src/engine/models/load.ts';
import { ort, sessionOptions, type RuntimeOptions } from '../src/engine/onnx/session.ts';
import { controlnetScales } from '../src/engine/models/controlnet.ts';

const args = process.argv.slice(2);
const opt = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const SETTINGS: Record<string, { arena: boolean; session: Record<string, string> }> = {
  default: { arena: true, session: {} },
  initializersOutsideArena: { arena: true, session: { use_device_allocator_for_initializers: '1' } },
  arenaOff: { arena: false, session: {} },
  prepackingOff: { arena: true, session: { disable_prepacking: '1' } },
};

async function child(path: string, setting: string, threads: number, dir: string, sessions: number): Promise<void> {
  const s = SETTINGS[setting]!;
  const rt: RuntimeOptions = { provider: 'cpu', threads, cacheDir: '', cpuMemArena: s.arena };
  const base = sessionOptions(rt);
  const extra = base.extra as { session: Record<string, unknown> };
  const before = process.memoryUsage().rss / 2 ** 20;
  let t0 = performance.now();
  const all: ort.InferenceSession[] = [];
  for (let i = 0; i < sessions; i++) all.push(await ort.InferenceSession.create(path, { ...base, extra: { ...extra, session: { ...extra.session, ...s.session } } }));
  const loadS = (performance.now() - t0) / 1000;
  const afterLoad = { rssMB: process.memoryUsage().rss / 2 ** 20, peakMB: process.resourceUsage().maxRSS / 1024 };
  const B = 2;
  const f32 = (dims: number[], v = 0.1) => new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(v), dims);
  const scales = controlnetScales((await openControlNetModel(dir)).config, 1, false);
  t0 = performance.now();
  for (const session of all) {
    await session.run({
      sample: f32([B, 4, 64, 64]), timestep: f32([B], 500), encoder_hidden_states: f32([B, 77, 768]), controlnet_cond: f32([B, 3, 512, 512], 0.5),
      conditioning_scales: new ort.Tensor('float32', scales, [scales.length]),
    });
  }
  const stepS = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ setting, sessions, startRssMB: before, loadS, afterLoad, afterStep: { rssMB: process.memoryUsage().rss / 2 ** 20, peakMB: process.resourceUsage().maxRSS / 1024 }, stepS }));
}

async function main(): Promise<void> {
  const dir = opt('--controlnet');
  if (!dir) throw new Error('--controlnet DIR (a diffusers ControlNet folder) is required');
  const rounds = Number(opt('--rounds') ?? 1);
  const threads = Number(opt('--threads') ?? 2);
  const sessions = Number(opt('--sessions') ?? 1);
  const settings = opt('--settings')?.split(',') ?? Object.keys(SETTINGS);
  const cache = opt('--keep') ?? mkdtempSync(join(tmpdir(), 'bench-session-memory-'));
  try {
    const compiled = await compileNetwork(cache, 'controlnet', await openControlNetModel(dir));
    const out: unknown[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const setting of settings) {
        const p = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--child', compiled.path, setting, String(threads), dir, String(sessions)],
          { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
        if (p.status !== 0) throw new Error(`${setting}: exit ${p.status}`);
        const line = JSON.parse(p.stdout.trim().split('\n').at(-1)!);
        console.error(JSON.stringify(line));
        out.push(line);
      }
    }
    console.log(JSON.stringify(out, null, 1));
  } finally {
    if (!opt('--keep')) rmSync(cache, { recursive: true, force: true });
  }
}

const ci = args.indexOf('--child');
if (ci >= 0) await child(args[ci + 1]!, args[ci + 2]!, Number(args[ci + 3]), args[ci + 4]!, Number(args[ci + 5]));
else await main();
