// Original LDM (CompVis) UNet key layout → diffusers UNet2DConditionModel names, generated from the config
// (the inverse of what diffusers' convert_ldm_unet_checkpoint reads): input_blocks / middle_block /
// output_blocks / time_embed / out → down_blocks / mid_block / up_blocks / time_embedding / conv_*.
import type { UNetConfig, UNetEncoderConfig } from './configs.ts';
import { KeyPairs } from './convert-keys.ts';

type DownConfig = UNetEncoderConfig;

function resnet(k: KeyPairs, d: string, o: string, shortcut: boolean): void {
  k.module(`${d}.norm1`, `${o}.in_layers.0`);
  k.module(`${d}.conv1`, `${o}.in_layers.2`);
  k.module(`${d}.time_emb_proj`, `${o}.emb_layers.1`);
  k.module(`${d}.norm2`, `${o}.out_layers.0`);
  k.module(`${d}.conv2`, `${o}.out_layers.3`);
  if (shortcut) k.module(`${d}.conv_shortcut`, `${o}.skip_connection`);
}

/** Transformer2DModel: the same module names in both layouts. */
function transformer(k: KeyPairs, d: string, o: string, layers: number): void {
  const same = (name: string) => k.module(`${d}.${name}`, `${o}.${name}`);
  same('norm');
  same('proj_in');
  for (let t = 0; t < layers; t++) {
    const b = `transformer_blocks.${t}`;
    for (const attn of ['attn1', 'attn2']) {
      for (const qkv of ['to_q', 'to_k', 'to_v']) k.param(`${d}.${b}.${attn}.${qkv}.weight`, `${o}.${b}.${attn}.${qkv}.weight`);
      same(`${b}.${attn}.to_out.0`);
    }
    for (const m of ['norm1', 'norm2', 'norm3', 'ff.net.0.proj', 'ff.net.2']) same(`${b}.${m}`);
  }
  same('proj_out');
}

function transformerLayers(c: DownConfig, block: number): number {
  const t = c.transformer_layers_per_block ?? 1;
  return Array.isArray(t) ? t[block]! : t;
}

const hasCrossAttention = (type: string) => type.startsWith('CrossAttn');

/** The part shared with ControlNet: time embedding, conv_in, down blocks and the middle block. */
export function addUnetEncoderKeys(k: KeyPairs, c: DownConfig): void {
  const L = c.layers_per_block;
  const chans = c.block_out_channels;
  if (c.mid_block_type !== undefined && c.mid_block_type !== null && c.mid_block_type !== 'UNetMidBlock2DCrossAttn') {
    throw new Error(`unsupported mid_block_type ${c.mid_block_type} (SD 1.x uses UNetMidBlock2DCrossAttn)`);
  }
  k.module('time_embedding.linear_1', 'time_embed.0');
  k.module('time_embedding.linear_2', 'time_embed.2');
  k.module('conv_in', 'input_blocks.0.0');
  let ch = chans[0]!;
  c.down_block_types.forEach((type, b) => {
    const out = chans[b]!;
    for (let l = 0; l < L; l++) {
      const i = 1 + b * (L + 1) + l;
      resnet(k, `down_blocks.${b}.resnets.${l}`, `input_blocks.${i}.0`, ch !== out);
      ch = out;
      if (hasCrossAttention(type)) transformer(k, `down_blocks.${b}.attentions.${l}`, `input_blocks.${i}.1`, transformerLayers(c, b));
    }
    if (b < chans.length - 1) k.module(`down_blocks.${b}.downsamplers.0.conv`, `input_blocks.${1 + b * (L + 1) + L}.0.op`);
  });
  resnet(k, 'mid_block.resnets.0', 'middle_block.0', false);
  transformer(k, 'mid_block.attentions.0', 'middle_block.1', transformerLayers(c, chans.length - 1));
  resnet(k, 'mid_block.resnets.1', 'middle_block.2', false);
}

/** Every UNet weight as (diffusers name ← LDM name without "model.diffusion_model."). */
export function ldmUnetKeyPairs(c: UNetConfig): KeyPairs {
  for (const key of ['class_embed_type', 'addition_embed_type', 'encoder_hid_dim_type'] as const) {
    if (c[key] !== undefined && c[key] !== null) throw new Error(`unsupported UNet config: ${key} = ${String(c[key])} (SD 1.x has none)`);
  }
  const k = new KeyPairs();
  addUnetEncoderKeys(k, c);
  const L = c.layers_per_block;
  const rev = [...c.block_out_channels].reverse();
  const n = rev.length;
  const revLayers = (i: number) => {
    const t = c.transformer_layers_per_block ?? 1;
    return Array.isArray(t) ? [...t].reverse()[i]! : t;
  };
  let output = rev[0]!;
  c.up_block_types.forEach((type, i) => {
    const prev = output;
    output = rev[i]!;
    const input = rev[Math.min(i + 1, n - 1)]!;
    for (let j = 0; j <= L; j++) {
      const idx = i * (L + 1) + j;
      const skip = j === L ? input : output;
      const resIn = j === 0 ? prev : output;
      resnet(k, `up_blocks.${i}.resnets.${j}`, `output_blocks.${idx}.0`, resIn + skip !== output);
      if (hasCrossAttention(type)) transformer(k, `up_blocks.${i}.attentions.${j}`, `output_blocks.${idx}.1`, revLayers(i));
    }
    if (i < n - 1) k.module(`up_blocks.${i}.upsamplers.0.conv`, `output_blocks.${i * (L + 1) + L}.${hasCrossAttention(type) ? 2 : 1}.conv`);
  });
  k.module('conv_norm_out', 'out.0');
  k.module('conv_out', 'out.2');
  return k;
}
