// Original LDM autoencoder key layout (first_stage_model.*) → diffusers AutoencoderKL names, like diffusers'
// convert_ldm_vae_checkpoint: down.N.block / up.N.block (up blocks in reverse order) / mid.block_1,2 /
// mid.attn_1 with its q, k, v, proj_out stored as 1x1 convs (read as linear weights).
import type { VaeConfig } from './configs.ts';
import { KeyPairs } from './convert-keys.ts';

function resnet(k: KeyPairs, d: string, o: string, shortcut: boolean): void {
  for (const m of ['norm1', 'conv1', 'norm2', 'conv2']) k.module(`${d}.${m}`, `${o}.${m}`);
  if (shortcut) k.module(`${d}.conv_shortcut`, `${o}.nin_shortcut`);
}

function mid(k: KeyPairs, part: 'encoder' | 'decoder'): void {
  resnet(k, `${part}.mid_block.resnets.0`, `${part}.mid.block_1`, false);
  const a = `${part}.mid_block.attentions.0`;
  const o = `${part}.mid.attn_1`;
  k.module(`${a}.group_norm`, `${o}.norm`);
  for (const [d, l] of [['to_q', 'q'], ['to_k', 'k'], ['to_v', 'v'], ['to_out.0', 'proj_out']]) k.module(`${a}.${d}`, `${o}.${l}`, true);
  resnet(k, `${part}.mid_block.resnets.1`, `${part}.mid.block_2`, false);
}

/** Every VAE weight as (diffusers name ← LDM name without "first_stage_model."). */
export function ldmVaeKeyPairs(c: VaeConfig): KeyPairs {
  const k = new KeyPairs();
  const chans = c.block_out_channels;
  const n = chans.length;
  const L = c.layers_per_block;
  k.module('encoder.conv_in', 'encoder.conv_in');
  let ch = chans[0]!;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < L; j++) {
      resnet(k, `encoder.down_blocks.${i}.resnets.${j}`, `encoder.down.${i}.block.${j}`, ch !== chans[i]);
      ch = chans[i]!;
    }
    if (i < n - 1) k.module(`encoder.down_blocks.${i}.downsamplers.0.conv`, `encoder.down.${i}.downsample.conv`);
  }
  mid(k, 'encoder');
  k.module('encoder.conv_norm_out', 'encoder.norm_out');
  k.module('encoder.conv_out', 'encoder.conv_out');
  if (c.use_quant_conv !== false) k.module('quant_conv', 'quant_conv');
  if (c.use_post_quant_conv !== false) k.module('post_quant_conv', 'post_quant_conv');
  k.module('decoder.conv_in', 'decoder.conv_in');
  mid(k, 'decoder');
  const rev = [...chans].reverse();
  ch = rev[0]!;
  for (let i = 0; i < n; i++) {
    const ldm = n - 1 - i;
    for (let j = 0; j <= L; j++) {
      resnet(k, `decoder.up_blocks.${i}.resnets.${j}`, `decoder.up.${ldm}.block.${j}`, ch !== rev[i]);
      ch = rev[i]!;
    }
    if (i < n - 1) k.module(`decoder.up_blocks.${i}.upsamplers.0.conv`, `decoder.up.${ldm}.upsample.conv`);
  }
  k.module('decoder.conv_norm_out', 'decoder.norm_out');
  k.module('decoder.conv_out', 'decoder.conv_out');
  return k;
}
