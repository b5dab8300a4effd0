// Turns the module paths LoRA files use into diffusers module paths.
// kohya writes a module path with every '.' replaced by '_' (`down_blocks_0_attentions_0_..._to_q`), so the
// underscores inside module names (`to_q`, `transformer_blocks`) are ambiguous; we split on '_' and re-join the
// pieces that form a known multi-word module name, longest first. Files trained on the original (LDM / sgm)
// UNet name its blocks `input_blocks.4.1`, `middle_block.1`, `output_blocks.5.2`; those are mapped to diffusers
// blocks from layers_per_block, like diffusers' own single-file conversion.

/** Module names containing '_' in diffusers' UNet2DConditionModel, transformers' CLIPTextModel and the LDM UNet. */
const MULTIWORD = [
  // diffusers UNet
  'down_blocks', 'up_blocks', 'mid_block', 'transformer_blocks', 'to_q', 'to_k', 'to_v', 'to_out', 'proj_in',
  'proj_out', 'time_emb_proj', 'conv_shortcut', 'conv_in', 'conv_out', 'conv_norm_out', 'time_embedding',
  'linear_1', 'linear_2', 'add_embedding', 'class_embedding',
  // CLIP text model
  'text_model', 'self_attn', 'q_proj', 'k_proj', 'v_proj', 'out_proj', 'layer_norm1', 'layer_norm2',
  'final_layer_norm', 'token_embedding', 'position_embedding', 'text_projection',
  // LDM UNet
  'input_blocks', 'middle_block', 'output_blocks', 'in_layers', 'out_layers', 'emb_layers', 'skip_connection',
  'time_embed',
].map((w) => w.split('_'));
const MAX_WORDS = Math.max(...MULTIWORD.map((w) => w.length));
const MULTIWORD_SET = new Set(MULTIWORD.map((w) => w.join('_')));

/** `down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0` → `down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0` */
export function underscoreToDotted(path: string): string {
  const parts = path.split('_');
  const out: string[] = [];
  for (let i = 0; i < parts.length;) {
    let taken = 1;
    for (let n = Math.min(MAX_WORDS, parts.length - i); n > 1; n--) {
      if (MULTIWORD_SET.has(parts.slice(i, i + n).join('_'))) {
        taken = n;
        break;
      }
    }
    out.push(parts.slice(i, i + taken).join('_'));
    i += taken;
  }
  return out.join('.');
}

export const LDM_BLOCK = /^(input_blocks|middle_block|output_blocks|time_embed|out)\./;

/** LDM resnet sub-module names → diffusers ResnetBlock2D names. */
const RESNET_RENAMES: [RegExp, string][] = [
  [/^in_layers\.0(?=\.|$)/, 'norm1'],
  [/^in_layers\.2(?=\.|$)/, 'conv1'],
  [/^emb_layers\.1(?=\.|$)/, 'time_emb_proj'],
  [/^out_layers\.0(?=\.|$)/, 'norm2'],
  [/^out_layers\.3(?=\.|$)/, 'conv2'],
  [/^skip_connection(?=\.|$)/, 'conv_shortcut'],
];

function resnetPath(rest: string): string {
  for (const [re, name] of RESNET_RENAMES) if (re.test(rest)) return rest.replace(re, name);
  throw new Error(`unknown LDM resnet layer "${rest}"`);
}

/**
 * Maps a dotted LDM UNet module path to the diffusers one, e.g. `input_blocks.4.1.proj_in` →
 * `down_blocks.1.attentions.0.proj_in`, `output_blocks.5.2.conv` → `up_blocks.1.upsamplers.0.conv`.
 * Throws on a path that names no LoRA-able module of an SD-1.x-shaped UNet.
 */
export function ldmToDiffusers(path: string, layersPerBlock = 2): string {
  const per = layersPerBlock + 1;
  let m: RegExpMatchArray | null;
  if (path === 'input_blocks.0.0') return 'conv_in';
  if (path === 'out.2') return 'conv_out';
  if ((m = path.match(/^time_embed\.([02])$/))) return m[1] === '0' ? 'time_embedding.linear_1' : 'time_embedding.linear_2';
  if ((m = path.match(/^input_blocks\.(\d+)\.(\d+)\.(.+)$/))) {
    const i = Number(m[1]), j = Number(m[2]), rest = m[3]!;
    const block = Math.floor((i - 1) / per), layer = (i - 1) % per;
    if (i >= 1 && layer === layersPerBlock && j === 0 && rest === 'op') return `down_blocks.${block}.downsamplers.0.conv`;
    if (i >= 1 && layer < layersPerBlock && j === 0) return `down_blocks.${block}.resnets.${layer}.${resnetPath(rest)}`;
    if (i >= 1 && layer < layersPerBlock && j === 1) return `down_blocks.${block}.attentions.${layer}.${rest}`;
  } else if ((m = path.match(/^middle_block\.(\d)\.(.+)$/))) {
    const j = Number(m[1]), rest = m[2]!;
    if (j === 0 || j === 2) return `mid_block.resnets.${j / 2}.${resnetPath(rest)}`;
    if (j === 1) return `mid_block.attentions.0.${rest}`;
  } else if ((m = path.match(/^output_blocks\.(\d+)\.(\d+)\.(.+)$/))) {
    const i = Number(m[1]), j = Number(m[2]), rest = m[3]!;
    const block = Math.floor(i / per), layer = i % per;
    // The upsampler follows the resnet directly (index 1) in blocks without attention, else comes third.
    if ((j === 2 || j === 1) && rest === 'conv' && layer === layersPerBlock) return `up_blocks.${block}.upsamplers.0.conv`;
    if (j === 0) return `up_blocks.${block}.resnets.${layer}.${resnetPath(rest)}`;
    if (j === 1) return `up_blocks.${block}.attentions.${layer}.${rest}`;
  }
  throw new Error(`unknown LDM UNet layer "${path}"`);
}
