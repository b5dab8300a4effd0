// The embedded safety checker's preprocessing and flag rule, and the replacements of a flagged image.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { isFlagged, NsfwClassifier, nsfwInput } from '../../../src/engine/extras/nsfw-classifier.ts';
import { packageDir } from '../../../src/engine/extras/embedded.ts';
import { replaceFlagged, withheldImage } from '../../../src/engine/extras/replace.ts';
import type { RgbImage } from '../../../src/engine/pipeline/types.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'safety-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

const gradient = (w: number, h: number): RgbImage => {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([(x * 255) / (w - 1), (y * 255) / (h - 1), 128], (y * w + x) * 3);
  return { width: w, height: h, data };
};

test('preprocessing is tf.image.resizeBilinear(alignCorners=true) / 255: corners and a linear ramp are kept exactly', () => {
  const x = nsfwInput(gradient(100, 50), 224);
  const plane = 224 * 224;
  assert.ok(Math.abs(x[0]! - 0) < 1e-6 && Math.abs(x[223]! - 1) < 1e-6, 'R runs 0 → 1 across');
  assert.ok(Math.abs(x[plane + 223 * 224]! - 1) < 1e-6, 'G reaches 1 at the bottom row');
  // a linear ramp stays linear under bilinear interpolation (up to the uint8 rounding of the source)
  assert.ok(Math.abs(x[111]! - 111 / 223) < 3 / 255);
  assert.ok(Math.abs(x[2 * plane + 5000]! - 128 / 255) < 1e-6);
});

test('the flag rule: Porn + Hentai ≥ 0.5 or Sexy ≥ 0.8', () => {
  const p = (Porn: number, Hentai: number, Sexy: number) => ({ Drawing: 0, Neutral: 1 - Porn - Hentai - Sexy, Porn, Hentai, Sexy });
  assert.equal(isFlagged(p(0.3, 0.2, 0)), true);
  assert.equal(isFlagged(p(0.3, 0.1, 0.5)), false);
  assert.equal(isFlagged(p(0, 0, 0.85)), true);
});

test('the classifier runs on a batch and calls a neutral photo-like image safe', async (t) => {
  const c = await NsfwClassifier.load({ provider: 'cpu', threads: 1, cacheDir });
  const { data, info } = await sharp(join(packageDir('@upscalerjs/esrgan-slim'), 'assets', 'fixture.png')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const fixture = { width: info.width, height: info.height, data: new Uint8Array(data) };
  const [a, b] = await c.classify([fixture, gradient(64, 64)]);
  t.diagnostic(JSON.stringify({ fixture: a, gradient: b }));
  for (const p of [a!, b!]) assert.ok(Math.abs(Object.values(p).reduce((s, v) => s + v, 0) - 1) < 1e-5, 'softmax sums to 1');
  assert.equal(isFlagged(a!), false);
  assert.match(c.model, /^nsfwjs-mobilenet_v2 \(nsfwjs@4\.3\.0\)$/);
});

test('replacements keep the size: black, pixelate, blur and the withheld-content text image', async () => {
  const img = gradient(96, 64);
  const black = await replaceFlagged(img, 'black');
  assert.ok(black.data.every((v) => v === 0));
  for (const how of ['blur', 'pixelate', 'sensitive_content_text'] as const) {
    const r = await replaceFlagged(img, how);
    assert.deepEqual([r.width, r.height, r.data.length], [96, 64, img.data.length], how);
    assert.ok(r.data.some((v, i) => v !== img.data[i]), `${how} changed the image`);
  }
  const pix = await replaceFlagged(img, 'pixelate');
  // blocks of 8 px: the first row repeats its first value 8 times
  assert.ok([...Array(8).keys()].every((x) => pix.data[x * 3] === pix.data[0]));
  const text = withheldImage(512, 512);
  const white = text.data.filter((v) => v === 235).length / 3, grey = text.data.filter((v) => v === 64).length / 3;
  assert.equal(white + grey, 512 * 512, 'two colours only');
  assert.ok(white > 5000 && white < 512 * 512 * 0.3, `text covers ${white} pixels`);
});
