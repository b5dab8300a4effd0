// The pipeline conformance cases written by tools/oracle/pipeline.py, as engine options and comparable outputs.
import type { ControlNetType, GenerateOptions, RgbImage, SchedulerName } from '../../src/engine/pipeline/types.ts';
import { loadFixture } from './fixtures.ts';

export const fx = loadFixture('pipeline/cases');
const { width: W, height: H, prompt, negative_prompt } = fx.meta;

const img = (key: string): RgbImage => ({ width: W, height: H, data: fx.get(`input.${key}`).data as Uint8Array });

export function options(c: Record<string, any>): GenerateOptions {
  const types: ControlNetType[] = c.inpaint ? ['inpaint'] : c.scales.length === 2 ? ['canny', 'depth'] : ['canny'];
  const hints = [img('control'), img('control2')];
  return {
    modelId: 'tiny', prompt, negativePrompt: negative_prompt, width: W, height: H,
    controls: types.map((type, i) => ({ type, image: c.inpaint ? img('init') : hints[i]!, scale: c.scales[i] })),
    autoHint: false, guessMode: c.guess_mode ?? false,
    initImage: c.strength !== undefined ? img('init') : undefined, maskImage: c.inpaint ? img('mask') : undefined,
    samples: c.samples, scheduler: c.scheduler as SchedulerName, steps: c.steps, guidanceScale: c.guidance,
    strength: c.strength ?? 1, seed: c.seed, tomesd: c.tome ?? false, useKarrasSigmas: false, algorithmType: 'none',
    vae: c.vae ?? null, loras: (c.loras ?? []).map(([id, strength]: [string, number]) => ({ id, strength })),
    clipSkip: c.clip_skip ?? 1, safetyChecker: false, enhancePrompt: false, multiLingual: false, upscale: 1,
  };
}

/** [B,3,H,W] VAE output → [B,H,W,3] in [0,1], as diffusers' output_type="np". */
export function toNp(pixels: Float32Array, batch: number): Float32Array {
  const plane = W * H;
  const out = new Float32Array(batch * plane * 3);
  for (let b = 0; b < batch; b++)
    for (let c = 0; c < 3; c++)
      for (let i = 0; i < plane; i++) {
        const x = Math.fround(Math.fround(pixels[(b * 3 + c) * plane + i]! / 2) + 0.5);
        out[(b * plane + i) * 3 + c] = Math.min(1, Math.max(0, x));
      }
  return out;
}

