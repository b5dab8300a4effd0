// text2img / img2img / inpaint with no ControlNet (the sibling endpoints): the UNet gets zero residuals. Checked
// against the same request with one ControlNet at conditioning scale 0, whose residuals are exactly zero: the two
// must give the same pixels (adding 0 changes no value), in every mode and at a latent size that is not a power of 2.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Pipeline } from '../../../src/engine/pipeline/pipeline.ts';
import type { GenerateOptions } from '../../../src/engine/pipeline/types.ts';
import { tinyDataDir } from '../../support/tiny-models.ts';

const dataDir = tinyDataDir();
const pipeline = await Pipeline.create({ dataDir, threads: 1 });
after(() => rmSync(dataDir, { recursive: true, force: true }));
const W = 32, H = 40;
const image = (k: number) => ({ width: W, height: H, data: new Uint8Array(W * H * 3).map((_, i) => (i * k) % 251) });
const mask = { width: W, height: H, data: new Uint8Array(W * H * 3).map((_, i) => (Math.floor(i / 3) % W < W / 2 ? 255 : 0)) };
const base: GenerateOptions = {
  modelId: 'tiny', prompt: 'a lighthouse', negativePrompt: 'fog', width: W, height: H, controls: [],
  autoHint: false, guessMode: false, samples: 2, scheduler: 'EulerDiscreteScheduler', steps: 3, guidanceScale: 7.5, strength: 1, seed: 11,
  tomesd: false, useKarrasSigmas: false, algorithmType: 'none', vae: null, loras: [], clipSkip: 1, safetyChecker: false,
  enhancePrompt: false, multiLingual: false, upscale: 1, safetyCheckerType: 'sensitive_content_text',
};

for (const [mode, extra] of [['txt2img', {}], ['img2img', { initImage: image(5), strength: 0.7 }], ['inpaint', { initImage: image(5), maskImage: mask, strength: 0.9 }]] as const) {
  test(`${mode} with no ControlNet equals one ControlNet at scale 0`, async () => {
    const none = await pipeline.generateRaw({ ...base, ...extra });
    assert.equal(none.applied.mode, mode);
    assert.ok(none.pixels.every(Number.isFinite));
    const zero = await pipeline.generateRaw({ ...base, ...extra, controls: [{ type: 'canny', image: image(7), scale: 0 }] });
    assert.deepEqual(none.pixels, zero.pixels);
    const one = await pipeline.generateRaw({ ...base, ...extra, controls: [{ type: 'canny', image: image(7), scale: 1 }] });
    assert.notDeepEqual(none.pixels, one.pixels, 'a ControlNet at scale 1 changes the image (the comparison can fail)');
  });
}
