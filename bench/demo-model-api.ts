// The README's first request on the demo model, through the real API (createApp + engine on loopback): the canny
// edges of a circle as control_image, "a red circle on a blue background", 128x128, 20 steps, seed 2, every other
// field at the API's defaults (UniPC, CFG 7.5) except Karras sigmas and ToMe off (the measured setting). Prints the
// engine time of each run and writes the control, the output and the outputs of seeds 1-8 side by side as PNGs
// (docs/demo-circle-edges.png, docs/demo-red-circle.png, docs/demo-seeds.png: the README shows them).
//   node --import tsx bench/demo-model-api.ts [runs=5] [outDir=docs]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import pino from 'pino';
import { loadConfig } from '../src/config.ts';
import { createApp } from '../src/api/app.ts';
import { installDemoModel } from '../src/cli/demo-model.ts';
import { canny } from '../src/engine/annotators/canny.ts';
import { engineFactory } from '../src/worker/engine-factory.ts';

const RUNS = Number(process.argv[2] ?? 5);
const OUT = process.argv[3] ?? join(import.meta.dirname, '..', 'docs');
const SIZE = 128;

// a circle (centre 60,68, radius 34 px): its canny edges are the control image
const disc = new Uint8Array(SIZE * SIZE * 3);
for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) {
  if ((x - 60) ** 2 + (y - 68) ** 2 <= 34 * 34) disc.fill(255, (y * SIZE + x) * 3, (y * SIZE + x) * 3 + 3);
}
const edges = canny({ width: SIZE, height: SIZE, data: disc });
const controlPng = await sharp(Buffer.from(edges.data), { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toBuffer();

const dataDir = mkdtempSync(join(tmpdir(), 'cn-demo-api-'));
try {
  await installDemoModel(join(dataDir, 'models'));
  const cfg = loadConfig({ LOG_LEVEL: 'silent' }, { dataDir, port: 0, waitWindowMs: 120_000, rateLimitPerMinute: 0, engineThreads: 1 });
  const app = await createApp({ ...cfg, defaultModelId: 'shapes-demo' }, { engine: engineFactory(cfg), logger: pino({ level: 'silent' }) });
  const key = app.ctx.keys.create().key;
  const url = await app.listen();
  const body = JSON.stringify({
    key, controlnet_model: 'canny', prompt: 'a red circle on a blue background', control_image: controlPng.toString('base64'),
    width: SIZE, height: SIZE, num_inference_steps: 20, use_karras_sigmas: 'no', tomesd: 'no', seed: 2, base64: 'yes',
  });
  const seconds: number[] = [];
  let first: any;
  for (let i = 0; i <= RUNS; i++) {
    const r = await (await fetch(`${url}/api/v6/images/controlnet`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json() as any;
    if (r.status !== 'success') throw new Error(JSON.stringify(r).slice(0, 500));
    if (i === 0) first = r;
    else seconds.push(r.generationTime);
  }
  seconds.sort((a, b) => a - b);
  console.log(`meta: steps ${first.meta.steps ?? first.meta.num_inference_steps}, scheduler ${first.meta.scheduler}, ${first.meta.W}x${first.meta.H}`);
  console.log(`engine seconds per request (20 steps, 128x128, 1 engine thread): median ${seconds[seconds.length >> 1]!.toFixed(2)}, `
    + `min ${seconds[0]!.toFixed(2)}, max ${seconds[seconds.length - 1]!.toFixed(2)} over ${RUNS} (after one warm-up: ${first.generationTime.toFixed(2)})`);
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'demo-circle-edges.png'), controlPng);
  const pngOf = async (r: any) => {
    const out = r.output[0] as string;
    return out.startsWith('http') ? Buffer.from(await (await fetch(out)).arrayBuffer()) : Buffer.from(out.replace(/^data:image\/\w+;base64,/, ''), 'base64');
  };
  writeFileSync(join(OUT, 'demo-red-circle.png'), await pngOf(first));
  // seeds 1-8 side by side (docs/demo-seeds.png: what other seeds of the README's request draw)
  const tiles: Buffer[] = [];
  for (let seed = 1; seed <= 8; seed++) {
    const r = await (await fetch(`${url}/api/v6/images/controlnet`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...JSON.parse(body), seed }) })).json() as any;
    tiles.push(await pngOf(r));
  }
  const grid = await sharp({ create: { width: SIZE * 8, height: SIZE, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .composite(tiles.map((input, i) => ({ input, left: i * SIZE, top: 0 }))).png({ palette: true }).toBuffer();
  writeFileSync(join(OUT, 'demo-seeds.png'), grid);
  await app.close();
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
