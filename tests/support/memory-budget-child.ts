// Child process of tests/engine/pipeline/memory-budget.test.ts: drives a sequence of requests on the tiny models
// under the memory budget given in argv[2] (MB above this process's resident memory at start) and prints one
// JSON line per request with the measured resident memory and the engine's accounting.
import { Pipeline } from '../../src/engine/pipeline/pipeline.ts';
import { processRssMB } from '../../src/engine/pipeline/memory.ts';
import type { GenerateOptions } from '../../src/engine/pipeline/types.ts';

const [dataDir, headroom, sizeArg] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4] ?? 256)];
const W = sizeArg, H = sizeArg;
const img = { width: W, height: H, data: new Uint8Array(W * H * 3).map((_, i) => (i * 7) % 256) };
const base: GenerateOptions = {
  modelId: 'tiny', prompt: 'a boat', negativePrompt: '', width: W, height: H, controls: [], autoHint: false, guessMode: false,
  samples: 1, scheduler: 'DDIMScheduler', steps: 2, guidanceScale: 7.5, strength: 1, seed: 5, tomesd: false, useKarrasSigmas: false,
  algorithmType: 'none', vae: null, loras: [], clipSkip: 1, safetyChecker: false, enhancePrompt: false, multiLingual: false, upscale: 1,
};
const sequence: [string, GenerateOptions][] = [
  ['canny', { ...base, controls: [{ type: 'canny', image: img, scale: 1 }] }],
  ['depth+vae-alt', { ...base, vae: 'vae-alt', controls: [{ type: 'depth', image: img, scale: 1 }] }],
  ['img2img canny', { ...base, initImage: img, strength: 0.7, controls: [{ type: 'canny', image: img, scale: 1 }] }],
  ['depth', { ...base, controls: [{ type: 'depth', image: img, scale: 1 }] }],
  ['canny+depth vae-alt', { ...base, vae: 'vae-alt', controls: [{ type: 'canny', image: img, scale: 1 }, { type: 'depth', image: img, scale: 0.5 }] }],
  ['canny', { ...base, controls: [{ type: 'canny', image: img, scale: 1 }] }],
];
// warm the process (ONNX Runtime's own allocations, JIT) with one request before measuring the base
// ONNX Runtime's CPU arena on (ENGINE_CPU_MEM_ARENA=1): the larger sessions, so that the sequence outgrows the
// small budget and evictions must hold it (with the default, off, the tiny models hold ~60 MB in all)
const warm = await Pipeline.create({ dataDir, threads: 1, memoryBudgetMB: 1e9, cpuMemArena: true });
await warm.generateRaw({ ...sequence[0]![1], width: 64, height: 64, controls: [{ type: 'canny', image: { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) }, scale: 1 }] });
const startRss = processRssMB();
const budget = Math.round(startRss + headroom);
const p = await Pipeline.create({ dataDir, threads: 1, memoryBudgetMB: budget, cpuMemArena: true });
console.log(JSON.stringify({ startRss: Math.round(startRss), budget }));
for (const [name, o] of sequence) {
  let peak = processRssMB();
  const t = setInterval(() => { peak = Math.max(peak, processRssMB()); }, 5);
  await p.generateRaw(o);
  clearInterval(t);
  await new Promise((r) => setTimeout(r, 50)); // releases are asynchronous
  const s = p.stats();
  console.log(JSON.stringify({ name, rss: Math.round(processRssMB()), peak: Math.round(peak), evictions: s.evictions, loaded: s.loaded.map((l) => `${l.key.split(":").slice(0, 2).join(":")}=${l.mb}`) }));
}
