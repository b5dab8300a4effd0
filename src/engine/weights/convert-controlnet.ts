// ControlNet 1.0 / 1.1 single-file layout (control_model.* or bare keys: input_hint_block, zero_convs,
// middle_block_out, input_blocks, middle_block, time_embed) → diffusers ControlNetModel names, like
// diffusers' convert_controlnet_checkpoint.
import type { ControlNetConfig } from './configs.ts';
import { KeyPairs } from './convert-keys.ts';
import { addUnetEncoderKeys } from './convert-ldm-unet.ts';

export function ldmControlNetKeyPairs(c: ControlNetConfig): KeyPairs {
  const k = new KeyPairs();
  addUnetEncoderKeys(k, c);
  // Conditioning embedding: conv, SiLU, (conv, SiLU) x 2(n-1) blocks, conv_out; the SiLUs take the odd indices.
  const blocks = 2 * (c.conditioning_embedding_out_channels.length - 1);
  k.module('controlnet_cond_embedding.conv_in', 'input_hint_block.0');
  for (let b = 0; b < blocks; b++) k.module(`controlnet_cond_embedding.blocks.${b}`, `input_hint_block.${2 * (b + 1)}`);
  k.module('controlnet_cond_embedding.conv_out', `input_hint_block.${2 * (blocks + 1)}`);
  // One zero conv per down-path output: conv_in, every resnet, every downsampler.
  const L = c.layers_per_block;
  const n = c.block_out_channels.length;
  const outputs = 1 + n * L + (n - 1);
  for (let i = 0; i < outputs; i++) k.module(`controlnet_down_blocks.${i}`, `zero_convs.${i}.0`);
  k.module('controlnet_mid_block', 'middle_block_out.0');
  return k;
}
