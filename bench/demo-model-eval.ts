// Runs the held-out cases written by tools/demo_model/evaluate.py (cases) through our engine on the demo model,
// with the options diffusers gets there (UniPC without Karras sigmas, no ToMe, plain prompts, 20 steps, CFG 7.5,
// the case's seed), and writes each output as raw float32 [H,W,3] in [0, 1] (diffusers' output_type="np"), for
// evaluate.py score to compare and measure.
//   node --import tsx bench/demo-model-eval.ts CASES_DIR [MODEL_DIR=assets/demo-model]
// CASES_DIR/cases.json lists {name, prompt, seed, type, control (PNG file), scale}; outputs go to CASES_DIR/ours/<name>.f32.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { Pipeline } from '../src/engine/pipeline/pipeline.ts';
import type { ControlNetType, GenerateOptions } from '../src/engine/pipeline/types.ts';

interface Case { name: string; prompt: string; seed: number; type: ControlNetType; control: string; scale: number; steps: number; guidance: number }

const casesDir = resolve(process.argv[2] ?? '');
const modelDir = resolve(process.argv[3] ?? join(import.meta.dirname, '..', 'assets', 'demo-model'));
const { width, height, cases } = JSON.parse(readFileSync(join(casesDir, 'cases.json'), 'utf8')) as { width: number; height: number; cases: Case[] };

const dataDir = mkdtempSync(join(tmpdir(), 'cn-demo-eval-'));
try {
  mkdirSync(join(dataDir, 'models', 'base'), { recursive: true });
  mkdirSync(join(dataDir, 'models', 'controlnet'), { recursive: true });
  symlinkSync(join(modelDir, 'base'), join(dataDir, 'models', 'base', 'demo'));
  for (const type of new Set(cases.map((c) => c.type))) symlinkSync(join(modelDir, `controlnet-${type}`), join(dataDir, 'models', 'controlnet', type));
  const pipeline = await Pipeline.create({ dataDir, threads: 1, tomeUseRand: false });
  mkdirSync(join(casesDir, 'ours'), { recursive: true });
  const seconds: number[] = [];
  for (const c of cases) {
    const { data, info } = await sharp(join(casesDir, c.control)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    if (info.width !== width || info.height !== height) throw new Error(`${c.control}: ${info.width}x${info.height}, expected ${width}x${height}`);
    const opts: GenerateOptions = {
      modelId: 'demo', prompt: c.prompt, negativePrompt: '', width, height,
      controls: [{ type: c.type, image: { width, height, data: new Uint8Array(data) }, scale: c.scale }],
      autoHint: false, guessMode: false, samples: 1, scheduler: 'UniPCMultistepScheduler', steps: c.steps, guidanceScale: c.guidance,
      strength: 1, seed: c.seed, tomesd: false, useKarrasSigmas: false, algorithmType: 'none', vae: null, loras: [],
      clipSkip: 1, safetyChecker: false, enhancePrompt: false, multiLingual: false, upscale: 1,
    };
    const t0 = performance.now();
    const { pixels } = await pipeline.generateRaw(opts);
    seconds.push((performance.now() - t0) / 1000);
    // [1,3,H,W] in [-1,1] -> [H,W,3] in [0,1], as diffusers' image processor (x / 2 + 0.5, clamped)
    const plane = width * height;
    const out = new Float32Array(plane * 3);
    for (let ch = 0; ch < 3; ch++) for (let i = 0; i < plane; i++) {
      out[i * 3 + ch] = Math.min(1, Math.max(0, Math.fround(Math.fround(pixels[ch * plane + i]! / 2) + 0.5)));
    }
    writeFileSync(join(casesDir, 'ours', `${c.name}.f32`), out);
  }
  const sorted = [...seconds].sort((a, b) => a - b);
  console.log(`${cases.length} cases; engine seconds per image: median ${sorted[sorted.length >> 1]!.toFixed(2)}, first ${seconds[0]!.toFixed(2)}`);
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
