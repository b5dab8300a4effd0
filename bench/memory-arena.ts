// ONNX Runtime's CPU arena on and off, and glibc's dynamic mmap threshold on and off (MALLOC_MMAP_THRESHOLD_):
// seconds per request and resident memory after each job, on the tiny models at a given size, each setting in
// its own process, run interleaved (A B C A B C …) so that load on a shared machine hits all alike.
// Run: node --import tsx bench/memory-arena.ts [--size 512] [--rounds 2] [--requests 3] [--steps 4]
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tinyDataDir } from '../tests/support/tiny-models.ts';

const args = process.argv.slice(2);
const opt = (name: string, d: number) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : d; };
const size = opt('--size', 512), rounds = opt('--rounds', 2), requests = opt('--requests', 3), steps = opt('--steps', 4);

if (process.env.BENCH_CHILD) {
  const { Pipeline } = await import('../src/engine/pipeline/pipeline.ts');
  const { processRssMB } = await import('../src/engine/pipeline/memory.ts');
  const img = { width: size, height: size, data: new Uint8Array(size * size * 3).map((_, i) => (i * 7) % 256) };
  const p = await Pipeline.create({ dataDir: process.env.BENCH_CHILD, threads: 2, cpuMemArena: process.env.ARENA === '1', memoryBudgetMB: 1e9 });
  const out: { seconds: number; rss: number }[] = [];
  for (let i = 0; i < requests; i++) {
    const t = performance.now();
    await p.generateRaw({
      modelId: 'tiny', prompt: 'a boat', negativePrompt: '', width: size, height: size, controls: [{ type: 'canny', image: img, scale: 1 }],
      autoHint: false, guessMode: false, samples: 1, scheduler: 'DDIMScheduler', steps, guidanceScale: 7.5, strength: 1, seed: i,
      tomesd: false, useKarrasSigmas: false, algorithmType: 'none', vae: null, loras: [], clipSkip: 1, safetyChecker: false,
      enhancePrompt: false, multiLingual: false, upscale: 1,
    });
    out.push({ seconds: (performance.now() - t) / 1000, rss: processRssMB() });
  }
  console.log(JSON.stringify(out));
  process.exit(0);
}

const settings = [
  { name: 'arena on,  default malloc', env: { ARENA: '1' } },
  { name: 'arena on,  MALLOC_MMAP_THRESHOLD_', env: { ARENA: '1', MALLOC_MMAP_THRESHOLD_: '65536' } },
  { name: 'arena off, MALLOC_MMAP_THRESHOLD_', env: { ARENA: '0', MALLOC_MMAP_THRESHOLD_: '65536' } },
  { name: 'arena off, default malloc', env: { ARENA: '0' } },
];
const dataDir = tinyDataDir();
const results = settings.map(() => ({ seconds: [] as number[], rss: [] as number[] }));
try {
  for (let r = 0; r < rounds; r++) {
    for (const [i, s] of settings.entries()) {
      const c = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, ...args], {
        env: { ...process.env, ...s.env, BENCH_CHILD: dataDir }, encoding: 'utf8',
      });
      if (c.status !== 0) throw new Error(`${s.name}: ${c.stderr}`);
      const runs = JSON.parse(c.stdout.trim().split('\n').at(-1)!) as { seconds: number; rss: number }[];
      results[i]!.seconds.push(...runs.slice(1).map((x) => x.seconds)); // the first request also loads
      results[i]!.rss.push(...runs.slice(1).map((x) => x.rss));
    }
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ref = median(results[0]!.seconds);
console.log(`tiny models, ${size}×${size}, ${steps} steps, ${rounds} rounds × ${requests - 1} timed requests`);
for (const [i, s] of settings.entries()) {
  const m = median(results[i]!.seconds);
  console.log(`${s.name.padEnd(36)} request min ${Math.min(...results[i]!.seconds).toFixed(3)} s, median ${m.toFixed(3)} s (×${(m / ref).toFixed(2)}), RSS after a job: median ${median(results[i]!.rss).toFixed(0)} MB, max ${Math.max(...results[i]!.rss).toFixed(0)} MB`);
}
