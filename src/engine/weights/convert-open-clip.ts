// SD 2.x's text encoder as single-file checkpoints hold it: OpenCLIP's text transformer (ViT-H/14 at full size)
// under "cond_stage_model.model.", read as the CLIPTextModel our builder runs. Follows diffusers'
// convert_open_clip_checkpoint (loaders/single_file_utils.py): in_proj split into q / k / v thirds, ln_1 / ln_2 /
// mlp.c_fc / mlp.c_proj / ln_final renamed, positional_embedding as the position embedding; and, as SD 2.x
// conditions on the penultimate layer (LDM's FrozenOpenCLIPEmbedder layer "penultimate"), the last resblock and
// text_projection are left out (diffusers' SD_2_TEXT_ENCODER_KEYS_TO_IGNORE), so the text encoder's last hidden
// state (after final_layer_norm = ln_final) is what the UNet attends to.
import type { ClipTextConfig } from './configs.ts';
import { KeyPairs } from './convert-keys.ts';
import type { WeightSource } from './types.ts';

/** Where SD 2.x single files keep the OpenCLIP text model. */
export const OPEN_CLIP_PREFIX = 'cond_stage_model.model.';

/** OpenCLIP's attention head width: every OpenCLIP text tower (ViT-B ... ViT-bigG) has heads = width / 64. */
export const OPEN_CLIP_HEAD_WIDTH = 64;

/** SD 2.x's tokenizer (stabilityai/stable-diffusion-2*'s tokenizer_config.json) pads with "!" (id 0 in CLIP's vocabulary). */
export const OPEN_CLIP_PAD_TOKEN = '!';

/** Thrown when the OpenCLIP tensors do not form a text transformer; the message says what is missing or odd. */
export class OpenClipLayoutError extends Error {
  override readonly name = 'OpenClipLayoutError';
}

/**
 * The CLIPTextModel config of an OpenCLIP text tower, read from its tensors (`prefix` + token_embedding.weight
 * [vocab, width], positional_embedding [positions, width], transformer.resblocks.N.mlp.c_fc.weight [inner, width]):
 * resblocks - 1 layers (the penultimate layer's output is used), width / 64 heads, exact GELU (OpenCLIP's
 * nn.GELU), layer-norm eps 1e-5. At full size this is stabilityai/stable-diffusion-2-1's text_encoder config
 * (1024 wide, 23 layers, 16 heads, 4096 inner, vocab 49408). Throws OpenClipLayoutError naming the tensor.
 */
export function openClipTextConfig(file: WeightSource, prefix = OPEN_CLIP_PREFIX): ClipTextConfig {
  const need = (name: string, rank: number): number[] => {
    const info = file.info(prefix + name);
    if (!info) throw new OpenClipLayoutError(`its OpenCLIP text encoder has no ${prefix}${name}`);
    if (info.shape.length !== rank) throw new OpenClipLayoutError(`${prefix}${name} has shape ${JSON.stringify(info.shape)}, expected ${rank} dimensions`);
    return info.shape;
  };
  const [vocab, width] = need('token_embedding.weight', 2) as [number, number];
  const [positions, posWidth] = need('positional_embedding', 2) as [number, number];
  if (posWidth !== width) throw new OpenClipLayoutError(`${prefix}positional_embedding is ${posWidth} wide but the token embedding ${width}`);
  const blocks = new Set<number>();
  const re = new RegExp(`^${prefix.replace(/\./g, '\\.')}transformer\\.resblocks\\.(\\d+)\\.`);
  for (const k of file.keys()) {
    const m = re.exec(k);
    if (m) blocks.add(Number(m[1]));
  }
  const count = blocks.size;
  for (let i = 0; i < count; i++) if (!blocks.has(i)) throw new OpenClipLayoutError(`its OpenCLIP text encoder has ${count} resblocks but no resblocks.${i}`);
  if (count < 2) throw new OpenClipLayoutError(`its OpenCLIP text encoder has ${count} resblock(s); SD 2.x uses the penultimate of at least 2`);
  const [inner] = need('transformer.resblocks.0.mlp.c_fc.weight', 2) as [number];
  const [fused] = need('transformer.resblocks.0.attn.in_proj_weight', 2) as [number];
  if (fused !== 3 * width) throw new OpenClipLayoutError(`${prefix}transformer.resblocks.0.attn.in_proj_weight has ${fused} rows, expected 3 × ${width}`);
  if (width % OPEN_CLIP_HEAD_WIDTH !== 0) {
    throw new OpenClipLayoutError(`its OpenCLIP text encoder is ${width} wide, not a multiple of OpenCLIP's ${OPEN_CLIP_HEAD_WIDTH}-wide attention heads`);
  }
  const projection = file.info(`${prefix}text_projection`)?.shape[1];
  return {
    vocab_size: vocab, hidden_size: width, intermediate_size: inner, num_hidden_layers: count - 1,
    num_attention_heads: width / OPEN_CLIP_HEAD_WIDTH, max_position_embeddings: positions, hidden_act: 'gelu', layer_norm_eps: 1e-5,
    ...(projection !== undefined ? { projection_dim: projection } : {}),
    bos_token_id: 0, eos_token_id: 2, pad_token_id: 1,
  };
}

/**
 * Every weight of the CLIPTextModel `c` (canonical "text_model.*" names) ← its OpenCLIP name below the prefix;
 * q/k/v take row thirds of in_proj_weight / in_proj_bias, as diffusers' convert_open_clip_checkpoint slices them.
 */
export function openClipTextKeyPairs(c: ClipTextConfig): KeyPairs {
  const k = new KeyPairs();
  const d = c.hidden_size;
  k.param('text_model.embeddings.token_embedding.weight', 'token_embedding.weight');
  k.param('text_model.embeddings.position_embedding.weight', 'positional_embedding');
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const to = `text_model.encoder.layers.${i}`;
    const from = `transformer.resblocks.${i}`;
    ['q_proj', 'k_proj', 'v_proj'].forEach((p, j) => {
      k.rows(`${to}.self_attn.${p}.weight`, `${from}.attn.in_proj_weight`, [j * d, (j + 1) * d]);
      k.rows(`${to}.self_attn.${p}.bias`, `${from}.attn.in_proj_bias`, [j * d, (j + 1) * d]);
    });
    k.module(`${to}.self_attn.out_proj`, `${from}.attn.out_proj`);
    k.module(`${to}.layer_norm1`, `${from}.ln_1`);
    k.module(`${to}.layer_norm2`, `${from}.ln_2`);
    k.module(`${to}.mlp.fc1`, `${from}.mlp.c_fc`);
    k.module(`${to}.mlp.fc2`, `${from}.mlp.c_proj`);
  }
  k.module('text_model.final_layer_norm', 'ln_final');
  return k;
}

/**
 * Names under the prefix that are not text-encoder weights: the last resblock (SD 2.x stops at the penultimate),
 * text_projection and logit_scale (CLIP's contrastive head), and the attn_mask buffer some OpenCLIP versions saved.
 */
export function isUnusedOpenClipKey(c: ClipTextConfig): (key: string) => boolean {
  const last = `transformer.resblocks.${c.num_hidden_layers}.`;
  return (key) => key.startsWith(last) || key === 'text_projection' || key === 'logit_scale' || key === 'attn_mask';
}
