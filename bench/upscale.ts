// Upscale speed in seconds per output megapixel, for the embedded esrgan-slim ×2 and a full-size RRDBNet
// (RealESRGAN_x4plus architecture: 23 blocks, 64 features, growth 32, random weights: the same arithmetic as the
// real file), each against a reference run in the same process on the same input: TF.js 4.11 (CPU backend) for
// esrgan-slim, and our untiled whole-image run for RRDBNet's tiling overhead. First, the peak RSS of a
// 1024×1024 → 2048×2048 esrgan-slim upscale in tiles.
//   node --import tsx bench/upscale.ts [threads=1]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ESRGAN_SLIM } from '../src/engine/extras/embedded.ts';
import { esrganSlim, rrdbNet, upscaleTiled } from '../src/engine/extras/upscaler.ts';
import { writeSafetensors } from '../src/engine/weights/safetensors.ts';
import type { RgbImage } from '../src/engine/pipeline/types.ts';

const threads = Number(process.argv[2] ?? 1);
const dir = mkdtempSync(join(tmpdir(), 'bench-upscale-'));
const rt = { provider: 'cpu' as const, threads, cacheDir: dir };
const image = (w: number, h: number): RgbImage => ({ width: w, height: h, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 7919) % 251) });
const time = async (f: () => Promise<unknown>): Promise<number> => { const t0 = performance.now(); await f(); return (performance.now() - t0) / 1000; };
const perMp = (s: number, w: number, h: number, k: number) => s / ((w * k * h * k) / 1e6);

try {
  // memory first (maxRSS is a high-water mark): 1024² → 2048² with esrgan-slim in 128-px tiles
  const slim = await esrganSlim(2, rt);
  await upscaleTiled(slim, image(32, 32));
  const before = process.resourceUsage().maxRSS / 1024;
  const big = await time(() => upscaleTiled(slim, image(1024, 1024)));
  console.log(`esrgan-slim x2, 1024² → 2048² in tiles: ${big.toFixed(1)} s (${perMp(big, 1024, 1024, 2).toFixed(2)} s/MP out); peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB (${before.toFixed(0)} MB before it)`);

  // esrgan-slim ×2 against TF.js on 96×96 → 192×192 (TF.js' pure-JS CPU backend is slow)
  const img = image(96, 96);
  const ours = await time(() => upscaleTiled(slim, img));
  await tf.setBackend('cpu');
  const path = ESRGAN_SLIM.modelJson(2);
  const mj = JSON.parse(readFileSync(path, 'utf8'));
  const bin = readFileSync(path.replace('model.json', 'group1-shard1of1.bin'));
  const ref = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: mj.modelTopology, weightSpecs: mj.weightsManifest[0].weights, weightData: new Uint8Array(bin).buffer }));
  const x = tf.tensor4d(Float32Array.from(img.data), [1, 96, 96, 3]);
  const tfjs = await time(async () => (ref.predict(x) as tf.Tensor).data());
  console.log(`esrgan-slim x2, 96² → 192²: ours ${perMp(ours, 96, 96, 2).toFixed(2)} s/MP out, TF.js cpu ${perMp(tfjs, 96, 96, 2).toFixed(2)} s/MP (TF.js / ours = ${(tfjs / ours).toFixed(1)}×)`);

  // a full-size RRDBNet x4plus with random weights, 48×48 → 192×192, whole vs 24-px tiles
  const w: Record<string, { dtype: 'float32'; shape: number[]; data: Float32Array }> = {};
  const add = (k: string, shape: number[]) => { const n = shape.reduce((a, b) => a * b, 1); w[k] = { dtype: 'float32', shape, data: Float32Array.from({ length: n }, (_, i) => (((i * 2654435761) % 1000) / 1000 - 0.5) * 0.02) }; };
  const convW = (k: string, o: number, i: number) => { add(`${k}.weight`, [o, i, 3, 3]); add(`${k}.bias`, [o]); };
  convW('conv_first', 64, 3);
  for (let b = 0; b < 23; b++) for (const r of ['rdb1', 'rdb2', 'rdb3']) for (let c = 1; c <= 5; c++) convW(`body.${b}.${r}.conv${c}`, c === 5 ? 64 : 32, 64 + 32 * (c - 1));
  for (const k of ['conv_body', 'conv_up1', 'conv_up2', 'conv_hr']) convW(k, 64, 64);
  convW('conv_last', 3, 64);
  const file = join(dir, 'RealESRGAN_x4plus.safetensors');
  await writeSafetensors(file, w);
  const rrdb = await rrdbNet(file, 'RealESRGAN_x4plus (random weights)', rt);
  const small = image(48, 48);
  await upscaleTiled(rrdb, image(16, 16));
  const whole = await time(() => upscaleTiled({ ...rrdb, tile: 1 << 20 }, small));
  const tiled = await time(() => upscaleTiled({ ...rrdb, tile: 24 }, small));
  console.log(`RRDBNet x4plus (random), 48² → 192²: whole ${perMp(whole, 48, 48, 4).toFixed(1)} s/MP out; 24-px tiles + 16-px margins ${perMp(tiled, 48, 48, 4).toFixed(1)} s/MP (${(tiled / whole).toFixed(2)}× the whole-image run)`);

} finally {
  rmSync(dir, { recursive: true, force: true });
}
