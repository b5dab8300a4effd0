// Full-size SD 1.5 UNet at 512×512, batch 2 (one CFG step), random weights: what a LoRA-set switch costs next to
// a step, what a LoRA branch adds to a step, and the ToMe (ratio 0.5) speed-up. All in one run on one machine.
// Needs the full-size random UNet written by bench/unet-step.ts:
//   node --import tsx bench/unet-step.ts --keep /tmp/bench-full && node --import tsx bench/lora-tome.ts /tmp/bench-full
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { combineLoras, loraFeeds } from '../src/engine/lora/combine.ts';
import { readLora } from '../src/engine/lora/load.ts';
import type { LoraSlot } from '../src/engine/models/layers.ts';
import { compileNetwork } from '../src/engine/models/load.ts';
import { tomeMergeFns } from '../src/engine/models/tome.ts';
import { skipShapes } from '../src/engine/models/unet-blocks.ts';
import { parseUNetConfig } from '../src/engine/models/unet-config.ts';
import { createSession, ort, type RuntimeOptions } from '../src/engine/onnx/session.ts';
import { openComponentFolder } from '../src/engine/weights/open.ts';
import { writeSafetensors } from '../src/engine/weights/safetensors.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: bench/lora-tome.ts DIR (the --keep folder of bench/unet-step.ts)');
const repeats = Number(process.env.REPEATS ?? 2);
const rt: RuntimeOptions = { provider: 'cpu', threads: 2, cacheDir: join(dir, 'cache'), allowSpinning: process.env.ENGINE_ALLOW_SPINNING === '1' };
const config = JSON.parse(readFileSync(join(dir, 'unet', 'config.json'), 'utf8'));
const src = { config, weights: await openComponentFolder(join(dir, 'unet')), origin: join(dir, 'unet') };
const now = () => performance.now() / 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function rand(n: number, scale: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; a[i] = (s / 4294967296 - 0.5) * scale; }
  return a;
}

const B = 2, h = 64, w = 64;
const base: Record<string, ort.Tensor> = {
  sample: new ort.Tensor('float32', rand(B * 4 * h * w, 2, 1), [B, 4, h, w]),
  timestep: new ort.Tensor('float32', Float32Array.of(500, 500), [B]),
  encoder_hidden_states: new ort.Tensor('float32', rand(B * 77 * 768, 2, 2), [B, 77, 768]),
};
const arch = parseUNetConfig(config, 'UNet');
skipShapes(arch).forEach((s, i) => {
  base[`down_block_additional_residual_${i}`] = new ort.Tensor('float32', new Float32Array(B * s.channels * (h / s.factor) * (w / s.factor)), [B, s.channels, h / s.factor, w / s.factor]);
});
const last = arch.blockOut.length - 1;
const mf = 2 ** last;
base.mid_block_additional_residual = new ort.Tensor('float32', new Float32Array(B * arch.blockOut[last]! * (h / mf) * (w / mf)), [B, arch.blockOut[last]!, h / mf, w / mf]);

function toFeeds(m: Map<string, { dims: number[]; data: Float32Array }>): Record<string, ort.Tensor> {
  return Object.fromEntries([...m].map(([k, t]) => [k, new ort.Tensor('float32', t.data, t.dims)]));
}

/** A kohya-format LoRA of rank r on every attention / projection / feed-forward layer, as typical files have. */
async function kohyaLora(slots: LoraSlot[], r: number, seed: number, path: string): Promise<void> {
  const tensors: Record<string, { dtype: 'float32'; shape: number[]; data: Float32Array }> = {};
  for (const s of slots.filter((x) => x.kind === 'linear' && /attentions/.test(x.name))) {
    const key = `lora_unet_${s.name.replace(/\.weight$/, '').replaceAll('.', '_')}`;
    tensors[`${key}.lora_down.weight`] = { dtype: 'float32', shape: [r, s.inFeatures], data: rand(r * s.inFeatures, 0.1, seed++) };
    tensors[`${key}.lora_up.weight`] = { dtype: 'float32', shape: [s.outFeatures, r], data: rand(s.outFeatures * r, 0.1, seed++) };
    tensors[`${key}.alpha`] = { dtype: 'float32', shape: [], data: Float32Array.of(r / 2) };
  }
  await writeSafetensors(path, tensors);
}

async function timeSteps(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<number> {
  await session.run(feeds); // warm-up
  const ts: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = now();
    await session.run(feeds);
    ts.push(now() - t0);
  }
  return median(ts);
}

const tmp = mkdtempSync(join(tmpdir(), 'bench-lora-'));
try {
  const plain = await compileNetwork(rt.cacheDir, 'unet', src, { lora: true, unet: { controlnetInputs: true } });
  const slots = (plain.info as { loraSlots: LoraSlot[] }).loraSlots;
  const session = await createSession(plain.path, rt);
  const noLora = toFeeds(loraFeeds(slots, new Map()).feeds);
  const stepPlain = await timeSteps(session, { ...base, ...noLora });

  await kohyaLora(slots, 32, 100, join(tmp, 'a.safetensors'));
  await kohyaLora(slots, 64, 900, join(tmp, 'b.safetensors'));
  let t0 = now();
  const [a, b] = [await readLora(join(tmp, 'a.safetensors')), await readLora(join(tmp, 'b.safetensors'))];
  const parseS = now() - t0;
  // A switch = combineLoras + loraFeeds + ort tensors, as a request does. A "new" pair is one combineLoras has not
  // seen (a new identity of the same parsed files: the same cost as newly loaded files, without re-reading them).
  const fresh = (p: typeof a): typeof a => ({ ...p });
  let feeds: Record<string, ort.Tensor> = {};
  const switchTo = (pa: typeof a, pb: typeof a, sa: number, sb: number): number => {
    t0 = now();
    const combined = combineLoras([{ parsed: pa, strength: sa }, { parsed: pb, strength: sb }]);
    feeds = toFeeds(loraFeeds(slots, combined).feeds);
    return now() - t0;
  };
  const newPair: number[] = [], strengthChange: number[] = [], backToRecent: number[] = [];
  for (let i = 0; i < 5; i++) {
    const [x, y] = [fresh(a), fresh(b)];
    newPair.push(switchTo(x, y, 0.7, 0.4));
    strengthChange.push(switchTo(x, y, 0.7, 0.5 + i * 0.1));
    switchTo(fresh(a), fresh(b), 1, 1);
    backToRecent.push(switchTo(x, y, 0.6, 0.4 + i * 0.1));
  }
  const switchS = median(newPair);
  const stepLora = await timeSteps(session, { ...base, ...feeds });
  await session.release();

  const tome = { ratio: 0.5, maxDownsample: 1, sx: 2, sy: 2, useRand: true, seed: 0 };
  const tomeC = await compileNetwork(rt.cacheDir, 'unet', src, { lora: true, unet: { controlnetInputs: true, tome: { ...tome, mergeFns: tomeMergeFns } } });
  const tomeSession = await createSession(tomeC.path, rt);
  const stepTome = await timeSteps(tomeSession, { ...base, ...noLora });
  await tomeSession.release();

  console.log(JSON.stringify({
    config: { size: 512, batch: 2, threads: rt.threads, repeats, loras: 'kohya rank 32 + rank 64 on every attention linear' },
    stepSeconds: { noLora: stepPlain, withTwoLoras: stepLora, tome: stepTome },
    loraSwitch: {
      parseBothFilesSeconds: parseS, newPairSeconds: switchS, strengthChangeSeconds: median(strengthChange), backToRecentSetSeconds: median(backToRecent),
      fractionOfStep: switchS / stepPlain, branchOverheadFraction: stepLora / stepPlain - 1,
    },
    tomeSpeedup: stepPlain / stepTome,
  }, null, 1));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
