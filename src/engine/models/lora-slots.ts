// LoRA inputs of a built graph. Each slot is a pair of graph inputs `<weight>.lora_down` / `<weight>.lora_up`
// whose rank is dynamic, so switching LoRAs only changes the feeds, never the graph. With no LoRA on a slot
// the feeds are rank-0 (zero-sized) tensors: ONNX Runtime's MatMul and Conv then add exact zeros.
import { ort } from '../onnx/session.ts';
import type { WeightSource } from '../weights/types.ts';
import type { LoraSlot } from './layers.ts';

export type { LoraSlot } from './layers.ts';

/** Rebuilds the slot list from a session's input names and the weights (e.g. after a compiled-cache hit). */
export function loraSlotsFromInputs(inputNames: readonly string[], src: WeightSource): LoraSlot[] {
  const slots: LoraSlot[] = [];
  for (const input of inputNames) {
    if (!input.endsWith('.lora_down')) continue;
    const name = input.slice(0, -'.lora_down'.length);
    const info = src.info(name) ?? src.info(name.replace(/^text_model\./, ''));
    if (!info) throw new Error(`LoRA slot ${name}: no such weight`);
    const [outF, inF, kh, kw] = info.shape as [number, number, number?, number?];
    const r = `${name}.r`;
    slots.push(info.shape.length === 4
      ? { name, kind: 'conv', inFeatures: inF, outFeatures: outF, kernel: [kh!, kw!], downShape: [r, inF, kh!, kw!], upShape: [outF, r, 1, 1] }
      : { name, kind: 'linear', inFeatures: inF, outFeatures: outF, kernel: [1, 1], downShape: [r, inF], upShape: [outF, r] });
  }
  return slots;
}

export interface LoraPair {
  down: ort.Tensor;
  up: ort.Tensor;
}

/** Feeds for every slot: the given pairs (strength and alpha/r already folded into `up`), rank 0 elsewhere. */
export function loraFeeds(slots: readonly LoraSlot[], given: ReadonlyMap<string, LoraPair>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  const known = new Set(slots.map((s) => s.name));
  for (const name of given.keys()) if (!known.has(name)) throw new Error(`LoRA targets ${name}, which has no LoRA slot in this graph`);
  for (const s of slots) {
    const pair = given.get(s.name);
    if (pair) {
      checkPair(s, pair);
      feeds[`${s.name}.lora_down`] = pair.down;
      feeds[`${s.name}.lora_up`] = pair.up;
      continue;
    }
    const dims = (shape: readonly (number | string)[]) => shape.map((d) => (typeof d === 'number' ? d : 0));
    feeds[`${s.name}.lora_down`] = new ort.Tensor('float32', new Float32Array(0), dims(s.downShape));
    feeds[`${s.name}.lora_up`] = new ort.Tensor('float32', new Float32Array(0), dims(s.upShape));
  }
  return feeds;
}

function checkPair(s: LoraSlot, p: LoraPair): void {
  const r = p.down.dims[0];
  const want = (shape: readonly (number | string)[]) => shape.map((d) => (typeof d === 'number' ? d : r)).join(',');
  if (p.down.dims.join(',') !== want(s.downShape) || p.up.dims.join(',') !== want(s.upShape)) {
    throw new Error(`LoRA ${s.name}: got down [${p.down.dims}] up [${p.up.dims}], expected [${want(s.downShape)}] / [${want(s.upShape)}]`);
  }
}
