import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDemoModels } from '../src/engine/models/demo.ts';
import { Pipeline } from '../src/engine/pipeline/pipeline.ts';
const dir = mkdtempSync(join(tmpdir(), 'cn-eng-'));
await createDemoModels(join(dir, 'models'), { baseId: 'tiny-demo' });
const e = await Pipeline.create({ dataDir: dir, threads: 1 });
const img = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(100) };
for (let i = 0; i < 2; i++) {
const t1 = Date.now();
const r = await e.generate({ modelId: 'tiny-demo', prompt: 'a cat', negativePrompt: '', controls: [{ type: 'canny', image: img, scale: 1 }], autoHint: false, guessMode: false,
  width: 64, height: 64, samples: 1, scheduler: 'UniPCMultistepScheduler', steps: 2, guidanceScale: 7.5, strength: 0.55, seed: 1, tomesd: true, useKarrasSigmas: true,
  algorithmType: 'none', vae: null, loras: [], clipSkip: 1, safetyChecker: true, enhancePrompt: true, multiLingual: true, upscale: false });
console.log(Date.now() - t1, r.images.length, r.images[0]?.length, r.nsfw, r.seconds, JSON.stringify(r.applied));
}
