// The model configs the key conversion (and the network builders) need, in diffusers' config.json field
// names, and the SD 1.5 defaults used for single-file checkpoints, which carry no config.

/** The fields the UNet and ControlNet share (time embedding, down blocks, middle block). */
export interface UNetEncoderConfig {
  in_channels: number;
  block_out_channels: number[];
  layers_per_block: number;
  down_block_types: string[];
  cross_attention_dim: number;
  attention_head_dim: number | number[];
  norm_num_groups: number;
  transformer_layers_per_block?: number | number[];
  mid_block_type?: string | null;
  [key: string]: unknown;
}

export interface UNetConfig extends UNetEncoderConfig {
  out_channels: number;
  up_block_types: string[];
}

export interface ControlNetConfig extends UNetEncoderConfig {
  conditioning_embedding_out_channels: number[];
  conditioning_channels?: number;
  global_pool_conditions?: boolean;
}

export interface VaeConfig {
  in_channels: number;
  out_channels: number;
  latent_channels: number;
  block_out_channels: number[];
  layers_per_block: number;
  down_block_types: string[];
  up_block_types: string[];
  norm_num_groups: number;
  scaling_factor?: number;
  use_quant_conv?: boolean;
  use_post_quant_conv?: boolean;
  [key: string]: unknown;
}

export interface ClipTextConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act?: string;
  layer_norm_eps?: number;
  [key: string]: unknown;
}

export interface SdConfigs {
  unet: UNetConfig;
  vae: VaeConfig;
  textEncoder: ClipTextConfig;
  scheduler: Record<string, unknown>;
}

const SD15_DOWN = ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'];

/** runwayml/stable-diffusion-v1-5's configs (unet, vae, text_encoder, scheduler). */
export const SD15_CONFIGS: SdConfigs = {
  unet: {
    act_fn: 'silu', attention_head_dim: 8, block_out_channels: [320, 640, 1280, 1280], center_input_sample: false,
    cross_attention_dim: 768, down_block_types: SD15_DOWN, downsample_padding: 1, flip_sin_to_cos: true, freq_shift: 0,
    in_channels: 4, layers_per_block: 2, mid_block_scale_factor: 1, norm_eps: 1e-5, norm_num_groups: 32, out_channels: 4,
    sample_size: 64, up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  },
  vae: {
    act_fn: 'silu', block_out_channels: [128, 256, 512, 512], down_block_types: Array(4).fill('DownEncoderBlock2D'),
    in_channels: 3, latent_channels: 4, layers_per_block: 2, norm_num_groups: 32, out_channels: 3, sample_size: 512,
    scaling_factor: 0.18215, up_block_types: Array(4).fill('UpDecoderBlock2D'),
  },
  textEncoder: {
    vocab_size: 49408, hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12,
    max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5, projection_dim: 768,
    bos_token_id: 0, eos_token_id: 2, pad_token_id: 1,
  },
  scheduler: {
    _class_name: 'PNDMScheduler', beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', clip_sample: false,
    num_train_timesteps: 1000, prediction_type: 'epsilon', set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1,
    timestep_spacing: 'leading', trained_betas: null,
  },
};

/** lllyasviel/control_v11p_sd15_* ControlNet config. */
export const SD15_CONTROLNET_CONFIG: ControlNetConfig = {
  act_fn: 'silu', attention_head_dim: 8, block_out_channels: [320, 640, 1280, 1280],
  conditioning_embedding_out_channels: [16, 32, 96, 256], controlnet_conditioning_channel_order: 'rgb',
  cross_attention_dim: 768, down_block_types: SD15_DOWN, downsample_padding: 1, flip_sin_to_cos: true, freq_shift: 0,
  global_pool_conditions: false, in_channels: 4, layers_per_block: 2, mid_block_scale_factor: 1, norm_eps: 1e-5,
  norm_num_groups: 32,
};

/**
 * stabilityai/stable-diffusion-2-1's UNet config, the one diffusers' from_single_file fetches for an SD 2.x file
 * (fetch_diffusers_config: model type "v2"): linear projections, heads = width / 64 (the LDM config's
 * num_head_channels 64: attention_head_dim [5, 10, 20, 20]), 1024-wide text, upcast_attention (the 768-v model
 * overflows in float16 attention otherwise). Single files take their widths and layout from their tensors over it.
 */
export const SD21_UNET_CONFIG: UNetConfig = {
  ...SD15_CONFIGS.unet, attention_head_dim: [5, 10, 20, 20], cross_attention_dim: 1024, use_linear_projection: true,
  upcast_attention: true, sample_size: 96,
};

/** stabilityai/stable-diffusion-2-1's scheduler config: DDIM, v-prediction (the 768-v model). */
export const SD21_SCHEDULER_CONFIG: Record<string, unknown> = {
  ...SD15_CONFIGS.scheduler, _class_name: 'DDIMScheduler', prediction_type: 'v_prediction',
};

/** stabilityai/stable-diffusion-2-inpainting's scheduler (diffusers' model type "inpainting_v2"): epsilon. */
export const SD2_INPAINTING_SCHEDULER_CONFIG: Record<string, unknown> = {
  ...SD15_CONFIGS.scheduler, _class_name: 'PNDMScheduler', prediction_type: 'epsilon',
};
