// The subset of diffusers' UNet2DConditionModel / ControlNetModel config.json that SD 1.x and 2.x use,
// normalised to per-block lists the way diffusers' constructors expand them. Anything else is rejected by
// name rather than silently built wrong.

export interface UNetConfigJson {
  _class_name?: string;
  in_channels?: number;
  out_channels?: number;
  block_out_channels?: number[];
  layers_per_block?: number | number[];
  down_block_types?: string[];
  up_block_types?: string[];
  mid_block_type?: string | null;
  attention_head_dim?: number | number[];
  num_attention_heads?: number | number[] | null;
  transformer_layers_per_block?: number | number[];
  reverse_transformer_layers_per_block?: number[][] | null;
  cross_attention_dim?: number | number[];
  norm_num_groups?: number;
  norm_eps?: number;
  use_linear_projection?: boolean;
  flip_sin_to_cos?: boolean;
  freq_shift?: number;
  upcast_attention?: boolean;
  only_cross_attention?: boolean | boolean[];
  conditioning_embedding_out_channels?: number[];
  conditioning_channels?: number;
  global_pool_conditions?: boolean;
  controlnet_conditioning_channel_order?: string;
  [k: string]: unknown;
}

export interface UNetArch {
  inChannels: number;
  outChannels: number;
  blockOut: number[];
  layers: number[];
  down: { type: 'CrossAttnDownBlock2D' | 'DownBlock2D'; heads: number; transformerLayers: number }[];
  up: { type: 'CrossAttnUpBlock2D' | 'UpBlock2D'; heads: number; transformerLayers: number; resnets: number }[];
  mid: { heads: number; transformerLayers: number } | null;
  crossAttentionDim: number;
  groups: number;
  eps: number;
  linearProjection: boolean;
  /** diffusers' upcast_attention: attention scores and softmax in float32 even in a float16 model. */
  upcastAttention: boolean;
  flipSinToCos: boolean;
  freqShift: number;
}

const perBlock = <T>(v: T | T[], n: number, what: string): T[] => {
  if (!Array.isArray(v)) return Array(n).fill(v);
  if (v.length !== n) throw new Error(`config ${what} has ${v.length} entries for ${n} blocks`);
  return v;
};

/** Config values that would change the network in ways these builders do not implement. */
const UNSUPPORTED: [string, (v: unknown) => boolean][] = [
  ['class_embed_type', (v) => v != null],
  ['addition_embed_type', (v) => v != null],
  ['encoder_hid_dim', (v) => v != null],
  ['time_cond_proj_dim', (v) => v != null],
  ['timestep_post_act', (v) => v != null],
  ['time_embedding_act_fn', (v) => v != null],
  ['time_embedding_type', (v) => v != null && v !== 'positional'],
  ['resnet_time_scale_shift', (v) => v != null && v !== 'default'],
  ['dual_cross_attention', (v) => v === true],
  ['center_input_sample', (v) => v === true],
  ['only_cross_attention', (v) => v === true || (Array.isArray(v) && v.some(Boolean))],
  ['conv_in_kernel', (v) => v != null && v !== 3],
  ['conv_out_kernel', (v) => v != null && v !== 3],
  ['attention_type', (v) => v != null && v !== 'default'],
  ['resnet_skip_time_act', (v) => v === true],
  ['resnet_out_scale_factor', (v) => v != null && v !== 1 && v !== 1.0],
  ['mid_block_only_cross_attention', (v) => v === true],
  ['cross_attention_norm', (v) => v != null],
];

export function parseUNetConfig(c: UNetConfigJson, what = 'UNet'): UNetArch {
  for (const [key, bad] of UNSUPPORTED) {
    if (key in c && bad(c[key])) throw new Error(`${what} config: ${key} = ${JSON.stringify(c[key])} is not supported`);
  }
  const blockOut = c.block_out_channels ?? [320, 640, 1280, 1280];
  const n = blockOut.length;
  const downTypes = c.down_block_types ?? ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'];
  const upTypes = c.up_block_types ?? ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'];
  for (const t of downTypes) if (t !== 'CrossAttnDownBlock2D' && t !== 'DownBlock2D') throw new Error(`${what} config: down block ${t} is not supported`);
  for (const t of upTypes) if (t !== 'CrossAttnUpBlock2D' && t !== 'UpBlock2D') throw new Error(`${what} config: up block ${t} is not supported`);
  if (downTypes.length !== n) throw new Error(`${what} config: ${downTypes.length} down blocks for ${n} block_out_channels`);
  // diffusers: `num_attention_heads = num_attention_heads or attention_head_dim` (a historical misnomer)
  const heads = perBlock(c.num_attention_heads ?? c.attention_head_dim ?? 8, n, 'attention_head_dim');
  const tLayers = perBlock(c.transformer_layers_per_block ?? 1, n, 'transformer_layers_per_block');
  const layers = perBlock(c.layers_per_block ?? 2, n, 'layers_per_block');
  if (c.reverse_transformer_layers_per_block != null) throw new Error(`${what} config: reverse_transformer_layers_per_block is not supported`);
  const cross = c.cross_attention_dim ?? 1280;
  const crossAll = perBlock(cross, n, 'cross_attention_dim');
  if (crossAll.some((d) => d !== crossAll[0])) throw new Error(`${what} config: per-block cross_attention_dim is not supported`);
  const midType = c.mid_block_type === undefined ? 'UNetMidBlock2DCrossAttn' : c.mid_block_type;
  if (midType !== null && midType !== 'UNetMidBlock2DCrossAttn') throw new Error(`${what} config: mid block ${midType} is not supported`);
  const rHeads = [...heads].reverse();
  const rT = [...tLayers].reverse();
  const rL = [...layers].reverse();
  return {
    inChannels: c.in_channels ?? 4,
    outChannels: c.out_channels ?? 4,
    blockOut,
    layers,
    down: downTypes.map((type, i) => ({ type: type as UNetArch['down'][number]['type'], heads: heads[i]!, transformerLayers: tLayers[i]! })),
    up: upTypes.map((type, i) => ({ type: type as UNetArch['up'][number]['type'], heads: rHeads[i]!, transformerLayers: rT[i]!, resnets: rL[i]! + 1 })),
    mid: midType === null ? null : { heads: heads[n - 1]!, transformerLayers: tLayers[n - 1]! },
    crossAttentionDim: crossAll[0]!,
    groups: c.norm_num_groups ?? 32,
    eps: c.norm_eps ?? 1e-5,
    linearProjection: c.use_linear_projection ?? false,
    upcastAttention: c.upcast_attention ?? false,
    flipSinToCos: c.flip_sin_to_cos ?? true,
    freqShift: c.freq_shift ?? 0,
  };
}
