// LoRA inputs of a built graph. Each slot is three graph inputs `<weight>.lora_down` / `<weight>.lora_up` /
// `<weight>.lora_scale` whose rank is dynamic, so switching LoRAs only changes the feeds, never the graph. With no
// LoRA on a slot the feeds are zeros (lora/combine.ts builds them: rank 0 for linear slots, rank 1 for conv slots,
// whose rank-0 form ONNX Runtime leaves unwritten): the branch adds exact zeros.
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
      ? { name, kind: 'conv', inFeatures: inF, outFeatures: outF, kernel: [kh!, kw!], downShape: [r, inF, kh!, kw!], upShape: [outF, r, 1, 1], scaleShape: [r] }
      : { name, kind: 'linear', inFeatures: inF, outFeatures: outF, kernel: [1, 1], downShape: [r, inF], upShape: [outF, r], scaleShape: [r] });
  }
  return slots;
}
