// The demo model that `npm start` installs (assets/demo-model, trained by tools/demo_model/) draws what is asked:
// through our engine, "a red circle on a blue background" with the canny edges of a circle as the control gives a
// red disc where the circle is and blue around it, at the API's defaults for this model (UniPC, 20 steps, CFG 7.5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_CONTROLNET_TYPES, DEMO_EXAMPLE, DEMO_MODEL_ID, installDemoModel } from '../../src/cli/demo-model.ts';
import { demoExample } from '../../src/api/routes/playground.ts';
import { canny } from '../../src/engine/annotators/canny.ts';
import { Pipeline } from '../../src/engine/pipeline/pipeline.ts';
import type { GenerateOptions, RgbImage } from '../../src/engine/pipeline/types.ts';

const SIZE = 128;
// tools/demo_model/dataset.py's named colours
const COLOURS: Record<string, [number, number, number]> = {
  red: [220, 30, 30], green: [30, 170, 50], blue: [30, 60, 220], yellow: [240, 220, 30],
  orange: [245, 130, 20], purple: [140, 40, 170], white: [245, 245, 245], black: [15, 15, 15],
};

function nearestColour(rgb: number[]): string {
  let best = '', bestD = Infinity;
  for (const [name, c] of Object.entries(COLOURS)) {
    const d = (rgb[0]! - c[0]) ** 2 + (rgb[1]! - c[1]) ** 2 + (rgb[2]! - c[2]) ** 2;
    if (d < bestD) { best = name; bestD = d; }
  }
  return best;
}

/** A red disc (centre 60,68, radius 34 px) on blue: the picture whose edges are the control. */
const inDisc = (x: number, y: number, r: number) => (x - 60) ** 2 + (y - 68) ** 2 <= r * r;
function discImage(): RgbImage {
  const data = new Uint8Array(SIZE * SIZE * 3);
  for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) data.set(inDisc(x, y, 34) ? COLOURS.red : COLOURS.blue, (y * SIZE + x) * 3);
  return { width: SIZE, height: SIZE, data };
}

test('installDemoModel: the base model and the trained ControlNets, marked as the demo, never overwritten', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cn-demo-install-'));
  try {
    const written = await installDemoModel(dir);
    assert.deepEqual(written, [join(dir, 'base', DEMO_MODEL_ID), ...DEMO_CONTROLNET_TYPES.map((t) => join(dir, 'controlnet', t))]);
    for (const f of ['model_index.json', 'unet/config.json', 'vae/config.json', 'text_encoder/config.json', 'tokenizer/vocab.json', 'DEMO.json']) {
      assert.ok(existsSync(join(dir, 'base', DEMO_MODEL_ID, f)), f);
    }
    assert.equal(JSON.parse(readFileSync(join(dir, 'controlnet', 'canny', 'DEMO.json'), 'utf8')).demo, true);
    assert.ok(!existsSync(join(dir, 'controlnet', 'depth')), 'no untrained ControlNet is installed');
    // the playground starts from the base model's example request; a ControlNet folder names none
    assert.deepEqual(demoExample(join(dir, 'base', DEMO_MODEL_ID)), DEMO_EXAMPLE);
    assert.equal(demoExample(join(dir, 'controlnet', 'canny')), null);
    assert.deepEqual(await installDemoModel(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Edge pixels of a hint map (any channel > 127), dilated by a (2r+1)² square: a tolerance of r pixels. */
function edgeMask(hint: RgbImage, r: number): Uint8Array {
  const m = new Uint8Array(SIZE * SIZE);
  for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) {
    if (hint.data[(y * SIZE + x) * 3]! <= 127) continue;
    for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) {
      const yy = y + dy, xx = x + dx;
      if (yy >= 0 && yy < SIZE && xx >= 0 && xx < SIZE) m[yy * SIZE + xx] = 1;
    }
  }
  return m;
}

function iou(a: Uint8Array, b: Uint8Array): number {
  let i = 0, u = 0;
  for (let k = 0; k < a.length; k++) { i += a[k]! & b[k]!; u += a[k]! | b[k]!; }
  return i / Math.max(1, u);
}

/** Mean RGB of the pixels where `keep(x, y)`. */
function meanRgb(img: RgbImage, keep: (x: number, y: number) => boolean): number[] {
  const sum = [0, 0, 0];
  let n = 0;
  for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) {
    if (!keep(x, y)) continue;
    for (let c = 0; c < 3; c++) sum[c]! += img.data[(y * SIZE + x) * 3 + c]!;
    n++;
  }
  return sum.map((v) => v / n);
}

const rgbText = (rgb: number[]) => rgb.map((v) => v.toFixed(0)).join(',');

/** [1,3,H,W] pixels in [-1, 1] (generateRaw) as an RgbImage. */
function toImage(pixels: Float32Array): RgbImage {
  const data = new Uint8Array(SIZE * SIZE * 3);
  for (let i = 0; i < SIZE * SIZE; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = Math.round(Math.min(1, Math.max(0, pixels[c * SIZE * SIZE + i]! / 2 + 0.5)) * 255);
  return { width: SIZE, height: SIZE, data };
}

// What the committed model does (assets/demo-model/README.md): it draws the shape where the control's edges are, in
// the prompt's colours (held out: shape 88%, background 96%). This test pins the README's request: seed 2 gives a red
// disc on blue, and the output's edges lie on the control's (and do not without it).
test('the demo model draws the README\'s request: a red disc on blue where the canny edges are (20 steps, seed 2)', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cn-demo-draw-'));
  try {
    await installDemoModel(join(dataDir, 'models'));
    const pipeline = await Pipeline.create({ dataDir, threads: 1, tomeUseRand: false });
    const control = canny(discImage());
    const opts: GenerateOptions = {
      modelId: DEMO_MODEL_ID, prompt: 'a red circle on a blue background', negativePrompt: '', width: SIZE, height: SIZE,
      controls: [{ type: 'canny', image: control, scale: 1 }], autoHint: false, guessMode: false, samples: 1,
      scheduler: 'UniPCMultistepScheduler', steps: 20, guidanceScale: 7.5, strength: 1, seed: 2, tomesd: false,
      useKarrasSigmas: false, algorithmType: 'none', vae: null, loras: [], clipSkip: 1, safetyChecker: false,
      enhancePrompt: false, multiLingual: false, upscale: 1,
    };
    const out = toImage((await pipeline.generateRaw(opts)).pixels);
    const without = toImage((await pipeline.generateRaw({ ...opts, controls: [{ ...opts.controls[0]!, scale: 0 }] })).pixels);
    // mean colours inside the disc and around it, a rim of 3 px left out on either side
    const meanIn = meanRgb(out, (x, y) => inDisc(x, y, 31)), meanOut = meanRgb(out, (x, y) => !inDisc(x, y, 37));
    assert.equal(nearestColour(meanIn), 'red', `inside the circle: mean rgb ${rgbText(meanIn)}`);
    assert.equal(nearestColour(meanOut), 'blue', `around the circle: mean rgb ${rgbText(meanOut)}`);
    const target = edgeMask(control, 2);
    const withIou = iou(edgeMask(canny(out), 2), target), withoutIou = iou(edgeMask(canny(without), 2), target);
    t.diagnostic(`disc mean rgb ${rgbText(meanIn)}, background ${rgbText(meanOut)}; edge IoU ${withIou.toFixed(3)} with the control, ${withoutIou.toFixed(3)} at scale 0`);
    assert.ok(withIou >= 0.3, `edge IoU with the control ${withIou.toFixed(3)}`);
    assert.ok(withIou >= 2 * withoutIou, `edge IoU ${withIou.toFixed(3)} with the control, ${withoutIou.toFixed(3)} at scale 0`);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
