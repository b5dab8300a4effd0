import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ldmToDiffusers, underscoreToDotted } from '../../../src/engine/lora/key-names.ts';

test('underscoreToDotted re-joins multi-word module names', () => {
  const cases: [string, string][] = [
    ['down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q', 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q'],
    ['up_blocks_1_attentions_2_transformer_blocks_0_attn2_to_out_0', 'up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_out.0'],
    ['mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj', 'mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj'],
    ['down_blocks_1_resnets_0_conv_shortcut', 'down_blocks.1.resnets.0.conv_shortcut'],
    ['up_blocks_0_resnets_2_time_emb_proj', 'up_blocks.0.resnets.2.time_emb_proj'],
    ['time_embedding_linear_1', 'time_embedding.linear_1'],
    ['text_model_encoder_layers_11_self_attn_out_proj', 'text_model.encoder.layers.11.self_attn.out_proj'],
    ['text_model_encoder_layers_3_mlp_fc2', 'text_model.encoder.layers.3.mlp.fc2'],
    ['input_blocks_4_0_skip_connection', 'input_blocks.4.0.skip_connection'],
    ['middle_block_2_out_layers_3', 'middle_block.2.out_layers.3'],
  ];
  for (const [k, want] of cases) assert.equal(underscoreToDotted(k), want);
});

test('ldmToDiffusers maps every SD 1.x block kind (layers_per_block = 2)', () => {
  const cases: [string, string][] = [
    ['input_blocks.0.0', 'conv_in'],
    ['input_blocks.1.0.in_layers.2', 'down_blocks.0.resnets.0.conv1'],
    ['input_blocks.2.1.transformer_blocks.0.attn1.to_k', 'down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_k'],
    ['input_blocks.3.0.op', 'down_blocks.0.downsamplers.0.conv'],
    ['input_blocks.4.0.skip_connection', 'down_blocks.1.resnets.0.conv_shortcut'],
    ['input_blocks.8.1.proj_out', 'down_blocks.2.attentions.1.proj_out'],
    ['input_blocks.9.0.op', 'down_blocks.2.downsamplers.0.conv'],
    ['input_blocks.11.0.out_layers.3', 'down_blocks.3.resnets.1.conv2'],
    ['input_blocks.10.0.emb_layers.1', 'down_blocks.3.resnets.0.time_emb_proj'],
    ['middle_block.0.emb_layers.1', 'mid_block.resnets.0.time_emb_proj'],
    ['middle_block.1.transformer_blocks.0.attn2.to_v', 'mid_block.attentions.0.transformer_blocks.0.attn2.to_v'],
    ['middle_block.2.in_layers.2', 'mid_block.resnets.1.conv1'],
    ['output_blocks.0.0.skip_connection', 'up_blocks.0.resnets.0.conv_shortcut'],
    // up_blocks.0 has no attention: its upsampler sits at index 1.
    ['output_blocks.2.1.conv', 'up_blocks.0.upsamplers.0.conv'],
    ['output_blocks.5.2.conv', 'up_blocks.1.upsamplers.0.conv'],
    ['output_blocks.5.1.proj_in', 'up_blocks.1.attentions.2.proj_in'],
    ['output_blocks.11.1.transformer_blocks.0.ff.net.2', 'up_blocks.3.attentions.2.transformer_blocks.0.ff.net.2'],
    ['time_embed.0', 'time_embedding.linear_1'],
    ['time_embed.2', 'time_embedding.linear_2'],
    ['out.2', 'conv_out'],
  ];
  for (const [k, want] of cases) assert.equal(ldmToDiffusers(k), want, k);
  assert.equal(ldmToDiffusers('input_blocks.3.0.in_layers.2', 1), 'down_blocks.1.resnets.0.conv1');
  assert.equal(ldmToDiffusers('input_blocks.2.0.op', 1), 'down_blocks.0.downsamplers.0.conv');
  assert.throws(() => ldmToDiffusers('input_blocks.1.0.in_layers.1'), /unknown LDM resnet layer/);
  assert.throws(() => ldmToDiffusers('input_blocks.3.1.proj_in'), /unknown LDM UNet layer/);
});
