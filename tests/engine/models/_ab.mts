// temporary: interleaved A/B of the UNet step with and without (rank-0) LoRA slots
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { loraFeeds, loraSlotsFromInputs } from '../../../src/engine/models/lora-slots.ts';
import { openComponent } from '../../../src/engine/models/load.ts';
const W = '/tmp/bench-h3', C = `${W}/cache/onnx`;
const opts = { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all' as const, executionMode: 'sequential' as const };
const lora = await ort.InferenceSession.create(`${C}/4a9eb71b46eea7cadb04501f7f7b88b9/model.onnx`, opts);
const plain = await ort.InferenceSession.create(`${C}/88e087a3b07b4901e131ca45915a54a7/model.onnx`, opts);
const cn = await ort.InferenceSession.create(`${C}/094c58af6bdd7bfeffdd32eada37d022/model.onnx`, opts);
const tr = JSON.parse(readFileSync(`${W}/torch_result.json`, 'utf8'));
const io = readFileSync(`${W}/io.bin`);
const t = (k: string) => { const h = tr.io[k]; const a = new Float32Array(h.length / 4); new Uint8Array(a.buffer).set(io.subarray(h.offset, h.offset + h.length)); return new ort.Tensor('float32', a, h.shape); };
const base = { sample: t('sample'), timestep: t('timestep'), encoder_hidden_states: t('encoder_hidden_states') };
const r = await cn.run({ ...base, controlnet_cond: t('controlnet_cond'), conditioning_scales: new ort.Tensor('float32', new Float32Array(13).fill(1), [13]) });
const res: Record<string, ort.Tensor> = { mid_block_additional_residual: r.mid_block_res_sample! };
for (let i = 0; i < 12; i++) res[`down_block_additional_residual_${i}`] = r[`down_block_res_sample_${i}`]!;
const slots = loraSlotsFromInputs(lora.inputNames, (await openComponent(`${W}/unet`)).weights);
const times: Record<string, number[]> = { lora: [], plain: [] };
for (let i = 0; i < 4; i++) {
  for (const [name, s, extra] of [['lora', lora, loraFeeds(slots, new Map())], ['plain', plain, {}]] as const) {
    const t0 = performance.now();
    await s.run({ ...base, ...res, ...extra });
    times[name]!.push((performance.now() - t0) / 1000);
  }
}
console.log(JSON.stringify(times), lora.inputNames.length, 'inputs,', slots.length, 'slots');
