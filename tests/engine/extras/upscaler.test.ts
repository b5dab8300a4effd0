// The upscale stage on the embedded esrgan-slim models: exact output size, tiles that change nothing, and the
// package's own sample (its fixture.png upscaled by UpscalerJS, assets/samples/2x/result.png).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { esrganSlim, upscaleTiled } from '../../../src/engine/extras/upscaler.ts';
import { packageDir } from '../../../src/engine/extras/embedded.ts';
import type { RgbImage } from '../../../src/engine/pipeline/types.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'upscale-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));
const rt = { provider: 'cpu' as const, threads: 1, cacheDir };

async function rgb(file: string): Promise<RgbImage> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

const pkg = packageDir('@upscalerjs/esrgan-slim');

test('x2 and x3 give exactly 2× and 3× the size; tiles with margins equal the whole-image run', async () => {
  const img = await rgb(join(pkg, 'assets', 'fixture.png'));
  const net = await esrganSlim(2, rt);
  const whole = await upscaleTiled({ ...net, tile: 1 << 20 }, img);
  assert.deepEqual([whole.width, whole.height], [2 * img.width, 2 * img.height]);
  const tiled = await upscaleTiled({ ...net, tile: 40 }, img);
  let diff = 0;
  tiled.data.forEach((v, i) => { diff = Math.max(diff, Math.abs(v - whole.data[i]!)); });
  assert.ok(diff <= 1, `tiles differ from the whole image by ${diff} levels (rounding of equal floats allows 1)`);
  const small = { width: 50, height: 30, data: img.data.subarray(0, 50 * 30 * 3) };
  const x3 = await upscaleTiled(await esrganSlim(3, rt), small);
  assert.deepEqual([x3.width, x3.height], [150, 90]);
});

test('x2 reproduces the package\'s own sample output (UpscalerJS in TF.js): mean error below 0.01 level', async (t) => {
  const img = await rgb(join(pkg, 'assets', 'fixture.png'));
  const ref = await rgb(join(pkg, 'assets', 'samples', '2x', 'result.png'));
  const out = await upscaleTiled(await esrganSlim(2, rt), img);
  assert.deepEqual([out.width, out.height], [ref.width, ref.height]);
  let sum = 0, max = 0;
  out.data.forEach((v, i) => { const d = Math.abs(v - ref.data[i]!); sum += d; max = Math.max(max, d); });
  const mean = sum / out.data.length;
  t.diagnostic(`mean abs difference ${mean.toExponential(2)} levels, max ${max}`);
  assert.ok(mean < 0.01 && max <= 1, `mean abs difference ${mean}, max ${max}`);
  // a blind check would pass for any image: a plain resize must be clearly further away
  const resized = new Uint8Array(await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).resize(ref.width, ref.height, { kernel: 'cubic' }).raw().toBuffer());
  let rsum = 0;
  resized.forEach((v, i) => { rsum += Math.abs(v - ref.data[i]!); });
  t.diagnostic(`bicubic resize: mean abs difference ${(rsum / resized.length).toFixed(3)}`);
  assert.ok(rsum / resized.length > 2 * mean);
});
