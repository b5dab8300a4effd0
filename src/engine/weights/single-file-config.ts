// What a single-file checkpoint is, read from its tensors the way diffusers' from_single_file reads them
// (loaders/single_file_utils.py: infer_diffusers_model_type, create_unet_diffusers_config_from_ldm) and from the
// sidecar config A1111 reads beside it (<file stem>.yaml, here also .yml or .json, in the original LDM layout):
// - SD 1.x and SD 2.x (an OpenCLIP text encoder under cond_stage_model.model.*: convert-open-clip.ts), each also
//   as inpainting model (conv_in with 9 input channels: latents, mask, masked-image latents);
// - the prediction type: the sidecar's model.params.parameterization ("v" → v_prediction, anything else or none
//   → epsilon, as A1111 builds the model from it). Without a sidecar: epsilon for SD 1.x; for SD 2.x what
//   from_single_file uses, the scheduler of the diffusers repository fetch_diffusers_config names
//   (stabilityai/stable-diffusion-2-1: v_prediction; stabilityai/stable-diffusion-2-inpainting: epsilon);
// - the UNet architecture from the sidecar's unet_config (create_unet_diffusers_config_from_ldm), else for SD 1.x
//   the base configs (SD 1.5's) with the input channels the tensors show, for SD 2.x its widths and layout read
//   from the tensors with SD 2.x's 64-channel attention heads; the VAE from the sidecar's first_stage_config
//   (create_vae_diffusers_config_from_ldm) when it has one;
// - where the UNet weights are: model.diffusion_model.* (the non-EMA ones when model_ema.* copies exist too, as
//   diffusers' default extract_ema=False), or only the flattened EMA names (model_ema.diffusion_model<path>);
// - anything else (SDXL, SD 3, Flux, a ControlNet or LoRA file, other UNet inputs) is refused with an
//   UnsupportedCheckpoint that says what was found.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SD15_CONFIGS, SD21_SCHEDULER_CONFIG, SD21_UNET_CONFIG, SD2_INPAINTING_SCHEDULER_CONFIG, type ClipTextConfig, type SdConfigs, type UNetConfig, type VaeConfig } from './configs.ts';
import { OPEN_CLIP_HEAD_WIDTH, OPEN_CLIP_PAD_TOKEN, OPEN_CLIP_PREFIX, OpenClipLayoutError, openClipTextConfig } from './convert-open-clip.ts';
import type { WeightSource } from './types.ts';

/** A checkpoint we cannot serve; the message says what its tensors (or sidecar) show. */
export class UnsupportedCheckpoint extends Error {
  override readonly name = 'UnsupportedCheckpoint';
}

export type SingleFileKind = 'sd1' | 'sd1-inpainting' | 'sd2' | 'sd2-inpainting';

export interface SingleFileFindings {
  kind: SingleFileKind;
  /** The text encoder's layout: OpenAI CLIP (SD 1.x, cond_stage_model.transformer.*) or OpenCLIP (SD 2.x). */
  textEncoder: 'clip' | 'open-clip';
  /** The tokenizer's pad token: "<|endoftext|>" for SD 1.x, "!" for SD 2.x (as their diffusers tokenizers pad). */
  padToken: string;
  /** Where the prediction type came from. */
  predictionTypeFrom: 'sidecar' | 'SD 1.x default' | 'stabilityai/stable-diffusion-2-1 default' | 'stabilityai/stable-diffusion-2-inpainting default';
  /** UNet input channels: 4, or 9 for inpainting models. */
  inChannels: number;
  predictionType: 'epsilon' | 'v_prediction';
  /** Where the UNet weights come from. */
  unetWeights: 'model' | 'model (EMA copies ignored)' | 'ema-only';
  /** The sidecar config's file name, when one was read. */
  sidecar?: string;
  /** The stored floating-point dtypes of the UNet weights. */
  dtypes: string[];
}

/** An original LDM (CompVis / A1111) model config, as a .yaml or .json sidecar holds it. */
export type LdmConfig = { model?: { params?: Record<string, any>; target?: string } };

const UNET = 'model.diffusion_model.';
const EMA = 'model_ema.diffusion_model';
const CONV_IN = `${UNET}input_blocks.0.0.weight`;

/** diffusers' flattened EMA name of a UNet key: "model_ema." + the key without "model." and without dots. */
export function emaName(unetKey: string): string {
  return `model_ema.${unetKey.split('.').slice(1).join('')}`;
}

/** The sidecar config beside a checkpoint (<stem>.yaml, .yml or .json), parsed; undefined when there is none. */
export async function readSidecarConfig(checkpoint: string): Promise<{ name: string; config: LdmConfig } | undefined> {
  const stem = join(dirname(checkpoint), basename(checkpoint, extname(checkpoint)));
  for (const ext of ['.yaml', '.yml', '.json']) {
    const path = stem + ext;
    if (!existsSync(path)) continue;
    const text = await readFile(path, 'utf8');
    let config: unknown;
    try {
      config = ext === '.json' ? JSON.parse(text) : parseYaml(text);
    } catch (e) {
      throw new UnsupportedCheckpoint(`its config ${basename(path)} cannot be parsed: ${(e as Error).message.split('\n')[0]}`);
    }
    if (!config || typeof config !== 'object' || !('model' in config)) {
      throw new UnsupportedCheckpoint(`its config ${basename(path)} is not an LDM model config (no "model" section)`);
    }
    return { name: basename(path), config: config as LdmConfig };
  }
  return undefined;
}

/** What the tensors say the file is; throws UnsupportedCheckpoint for anything but SD 1.x / 2.x (incl. inpainting). */
export function detectCheckpoint(file: WeightSource): { kind: SingleFileKind; inChannels: number; ema: 'none' | 'both' | 'ema-only' } {
  const keys = file.keys();
  const has = (prefix: string) => keys.some((k) => k.startsWith(prefix));
  const only = 'only SD 1.x and SD 2.x are supported';
  if (has('conditioner.embedders.')) throw new UnsupportedCheckpoint(`an SDXL checkpoint (conditioner.embedders.*); ${only}`);
  if (has('model.diffusion_model.joint_blocks.') || has('text_encoders.')) throw new UnsupportedCheckpoint(`an SD 3 checkpoint; ${only}`);
  if (has('double_blocks.') || has('model.diffusion_model.double_blocks.')) throw new UnsupportedCheckpoint(`a Flux checkpoint; ${only}`);
  const model = has(UNET);
  const ema = keys.filter((k) => k.startsWith(EMA)).length;
  if (!model && ema === 0) {
    if (has('control_model.') || has('input_hint_block.')) throw new UnsupportedCheckpoint('a ControlNet checkpoint, not a base model (put it under controlnet/)');
    if (keys.some((k) => /lora_(up|down|A|B)/.test(k))) throw new UnsupportedCheckpoint('a LoRA, not a base model (put it under lora/)');
    throw new UnsupportedCheckpoint(`not an SD single-file checkpoint (no model.diffusion_model.* or model_ema.* UNet keys; ${keys.length} tensors, e.g. ${keys.slice(0, 3).join(', ')})`);
  }
  const openClip = has(OPEN_CLIP_PREFIX);
  const clip = has('cond_stage_model.transformer.');
  const convIn = file.info(model ? CONV_IN : emaName(CONV_IN));
  if (!convIn || convIn.shape.length !== 4) throw new UnsupportedCheckpoint('its UNet has no input convolution (input_blocks.0.0.weight)');
  const inChannels = convIn.shape[1]!;
  const family = openClip ? 'SD 2.x' : 'SD 1.x';
  if (inChannels !== 4 && inChannels !== 9) {
    const what = openClip && inChannels === 5 ? ' (an SD 2 depth model)' : openClip && inChannels === 7 ? ' (an SD x4 upscaler)' : '';
    throw new UnsupportedCheckpoint(`its UNet takes ${inChannels} input channels${what}; ${family} takes 4 (9 for inpainting)`);
  }
  if (openClip && clip) throw new UnsupportedCheckpoint('it holds both a CLIP (cond_stage_model.transformer.*) and an OpenCLIP (cond_stage_model.model.*) text encoder');
  if (!openClip && !clip) {
    throw new UnsupportedCheckpoint(`it has a UNet but no text encoder this server knows (neither cond_stage_model.transformer.* (SD 1.x) nor cond_stage_model.model.* (SD 2.x)); cond_stage_model keys found: ${keys.filter((k) => k.startsWith('cond_stage_model.')).slice(0, 3).join(', ') || 'none'}`);
  }
  const attn = keys.find((k) => /(^|\.)input_blocks\.\d+\.1\.transformer_blocks\.0\.attn2\.to_k\.weight$/.test(k) || /input_blocks\d+1transformer_blocks0attn2to_kweight$/.test(k));
  const context = attn ? file.info(attn)!.shape[1] : undefined;
  if (!openClip && context !== undefined && context !== 768 && context >= 1024) {
    throw new UnsupportedCheckpoint(`its UNet attends to ${context}-wide text embeddings but its text encoder is SD 1.x's CLIP (cond_stage_model.transformer.*)`);
  }
  const kind: SingleFileKind = openClip ? (inChannels === 9 ? 'sd2-inpainting' : 'sd2') : inChannels === 9 ? 'sd1-inpainting' : 'sd1';
  return { kind, inChannels, ema: model ? (ema > 100 ? 'both' : 'none') : 'ema-only' };
}

/**
 * An SD 2.x UNet's config read from its LDM tensors (`name` maps an LDM name below model.diffusion_model. to the
 * file's name): in/out channels, block widths (each level's ResBlock output), res blocks per level, which levels
 * attend, transformer depth, linear or 1x1-conv projections, cross_attention_dim (attn2.to_k's input width), and
 * heads = width / 64 (SD 2.x's num_head_channels 64, which no tensor shows), over `base` (SD 2.1's other fields).
 * At full size this equals stabilityai/stable-diffusion-2-1's UNet config. Throws UnsupportedCheckpoint, also for
 * widths that are not multiples of 64 unless `headsGiven` (a sidecar's unet_config will set the heads).
 */
export function sd2UnetConfigFromTensors(file: WeightSource, name: (ldm: string) => string, base: UNetConfig = SD21_UNET_CONFIG, headsGiven = false): UNetConfig {
  const shape = (ldm: string) => file.info(name(ldm))?.shape;
  const convIn = shape('input_blocks.0.0.weight')!;
  const convOut = shape('out.2.weight');
  if (!convOut) throw new UnsupportedCheckpoint('its UNet has no output convolution (out.2.weight)');
  const levels: { widths: number[]; attention: boolean[]; depth: number[]; linear: boolean[] }[] = [{ widths: [], attention: [], depth: [], linear: [] }];
  let cross: number | undefined;
  for (let i = 1; ; i++) {
    if (shape(`input_blocks.${i}.0.op.weight`)) {
      levels.push({ widths: [], attention: [], depth: [], linear: [] });
      continue;
    }
    const conv2 = shape(`input_blocks.${i}.0.out_layers.3.weight`);
    if (!conv2) break;
    const level = levels[levels.length - 1]!;
    level.widths.push(conv2[0]!);
    const projIn = shape(`input_blocks.${i}.1.proj_in.weight`);
    level.attention.push(projIn !== undefined);
    level.linear.push(projIn?.length === 2);
    let depth = 0;
    while (shape(`input_blocks.${i}.1.transformer_blocks.${depth}.attn2.to_k.weight`)) depth++;
    level.depth.push(depth);
    if (depth > 0) cross ??= shape(`input_blocks.${i}.1.transformer_blocks.0.attn2.to_k.weight`)![1];
  }
  const perLevel = levels.map((l) => l.widths.length);
  if (perLevel.some((n) => n === 0 || n !== perLevel[0])) throw new UnsupportedCheckpoint(`its UNet levels have ${perLevel.join(', ')} res blocks; expected the same number in each`);
  const uniform = <T>(xs: T[], what: string): T => {
    if (xs.some((x) => x !== xs[0])) throw new UnsupportedCheckpoint(`its UNet mixes ${what} within a level`);
    return xs[0]!;
  };
  const blockOut = levels.map((l) => uniform(l.widths, 'block widths'));
  const attends = levels.map((l) => uniform(l.attention, 'blocks with and without attention'));
  const depths = levels.filter((_, i) => attends[i]).map((l) => uniform(l.depth, 'transformer depths'));
  if (cross === undefined) throw new UnsupportedCheckpoint('its UNet has no cross-attention (attn2.to_k) in any level');
  if (levels.some((l, i) => attends[i] && l.linear.includes(false))) throw new UnsupportedCheckpoint('its UNet projects into attention with 1x1 convolutions, which SD 2.x does not (linear proj_in)');
  const heads = blockOut.map((w) => w / OPEN_CLIP_HEAD_WIDTH);
  if (heads.some((h) => !Number.isInteger(h)) && !headsGiven) {
    throw new UnsupportedCheckpoint(`its UNet blocks are ${blockOut.join(', ')} wide, not multiples of SD 2.x's 64-channel attention heads; put its LDM .yaml beside it (with unet_config num_head_channels)`);
  }
  const t = depths.length > 0 && depths.every((d) => d === depths[0]) ? depths[0]! : blockOut.map((_, i) => (attends[i] ? depths[attends.slice(0, i).filter(Boolean).length]! : 1));
  return {
    ...base,
    in_channels: convIn[1]!, out_channels: convOut[0]!, block_out_channels: blockOut, layers_per_block: perLevel[0]!,
    down_block_types: attends.map((a) => (a ? 'CrossAttnDownBlock2D' : 'DownBlock2D')),
    up_block_types: [...attends].reverse().map((a) => (a ? 'CrossAttnUpBlock2D' : 'UpBlock2D')),
    cross_attention_dim: cross, attention_head_dim: headsGiven ? base.attention_head_dim : heads, use_linear_projection: true, transformer_layers_per_block: t,
  };
}

/** diffusers' create_vae_diffusers_config_from_ldm over `base`, when the sidecar's first_stage_config has a full ddconfig. */
export function vaeConfigFromLdm(ldm: LdmConfig, base: VaeConfig): VaeConfig {
  const params = ldm.model?.params ?? {};
  const dd = params.first_stage_config?.params?.ddconfig as Record<string, any> | undefined;
  if (!dd || typeof dd.ch !== 'number' || !Array.isArray(dd.ch_mult) || typeof dd.num_res_blocks !== 'number') return base;
  const blockOut = (dd.ch_mult as number[]).map((m) => dd.ch * m);
  return {
    ...base, in_channels: dd.in_channels ?? base.in_channels, out_channels: dd.out_ch ?? base.out_channels, block_out_channels: blockOut,
    down_block_types: blockOut.map(() => 'DownEncoderBlock2D'), up_block_types: blockOut.map(() => 'UpDecoderBlock2D'),
    latent_channels: dd.z_channels ?? base.latent_channels, layers_per_block: dd.num_res_blocks,
    scaling_factor: typeof params.scale_factor === 'number' ? params.scale_factor : base.scaling_factor,
  };
}

/** diffusers' create_unet_diffusers_config_from_ldm (the fields our UNet builder reads), over `base`. */
export function unetConfigFromLdm(ldm: LdmConfig, base: UNetConfig): UNetConfig {
  const p = ldm.model?.params?.unet_config?.params as Record<string, any> | undefined;
  if (!p) return base;
  const blockOut = (p.channel_mult as number[]).map((m) => p.model_channels * m);
  const attnRes = p.attention_resolutions as number[];
  const down: string[] = [];
  const up: string[] = [];
  let resolution = 1;
  for (let i = 0; i < blockOut.length; i++) {
    down.push(attnRes.includes(resolution) ? 'CrossAttnDownBlock2D' : 'DownBlock2D');
    if (i !== blockOut.length - 1) resolution *= 2;
  }
  for (let i = 0; i < blockOut.length; i++) {
    up.push(attnRes.includes(resolution) ? 'CrossAttnUpBlock2D' : 'UpBlock2D');
    resolution = Math.floor(resolution / 2);
  }
  const linear = p.use_linear_in_transformer === true;
  let heads: number | number[] | undefined = p.num_heads;
  if (linear && heads === undefined) heads = (p.channel_mult as number[]).map((c) => (p.model_channels / p.num_head_channels) * c);
  const context = Array.isArray(p.context_dim) ? p.context_dim[0] : p.context_dim;
  return {
    ...base,
    in_channels: p.in_channels,
    out_channels: p.out_channels,
    block_out_channels: blockOut,
    layers_per_block: p.num_res_blocks,
    down_block_types: down,
    up_block_types: up,
    cross_attention_dim: context,
    attention_head_dim: heads ?? base.attention_head_dim,
    use_linear_projection: linear,
    transformer_layers_per_block: p.transformer_depth ?? 1,
  };
}

/**
 * The configs of a single-file checkpoint: for SD 1.x `base` (SD 1.5's unless told) with what the tensors and the
 * sidecar say; for SD 2.x the UNet and text encoder read from the tensors (sd2UnetConfigFromTensors,
 * openClipTextConfig) or the sidecar's unet_config, `base`'s VAE, SD 2.1's scheduler (SD 2 inpainting's for a
 * 9-channel UNet). Throws UnsupportedCheckpoint when the sidecar and the tensors disagree or the tensors make no model.
 */
export function inferSingleFileConfigs(file: WeightSource, base: SdConfigs = SD15_CONFIGS, sidecar?: { name: string; config: LdmConfig }): { configs: SdConfigs; findings: SingleFileFindings } {
  const found = detectCheckpoint(file);
  const sd2 = found.kind === 'sd2' || found.kind === 'sd2-inpainting';
  const params = sidecar?.config.model?.params ?? {};
  const ldmName = found.ema === 'ema-only' ? (k: string) => emaName(UNET + k) : (k: string) => UNET + k;
  let unet: UNetConfig = base.unet;
  let textEncoder: ClipTextConfig = base.textEncoder;
  let scheduler: Record<string, unknown> = base.scheduler;
  if (sd2) {
    const inpainting = found.kind === 'sd2-inpainting';
    // stabilityai/stable-diffusion-2-inpainting's UNet does not upcast attention; 2-1's does
    const headsGiven = sidecar?.config.model?.params?.unet_config?.params !== undefined;
    unet = sd2UnetConfigFromTensors(file, ldmName, { ...SD21_UNET_CONFIG, upcast_attention: !inpainting }, headsGiven);
    try {
      textEncoder = openClipTextConfig(file);
    } catch (e) {
      if (e instanceof OpenClipLayoutError) throw new UnsupportedCheckpoint(e.message);
      throw e;
    }
    scheduler = inpainting ? SD2_INPAINTING_SCHEDULER_CONFIG : SD21_SCHEDULER_CONFIG;
  }
  if (sidecar) unet = unetConfigFromLdm(sidecar.config, unet);
  if (sidecar && params.unet_config?.params?.in_channels !== undefined && unet.in_channels !== found.inChannels) {
    throw new UnsupportedCheckpoint(`its config ${sidecar.name} says ${unet.in_channels} UNet input channels but the weights have ${found.inChannels}`);
  }
  if (sd2 && unet.cross_attention_dim !== textEncoder.hidden_size) {
    throw new UnsupportedCheckpoint(`its UNet attends to ${unet.cross_attention_dim}-wide text embeddings but its OpenCLIP text encoder is ${textEncoder.hidden_size} wide`);
  }
  unet = { ...unet, in_channels: found.inChannels };
  const vae = sidecar ? vaeConfigFromLdm(sidecar.config, base.vae) : base.vae;
  let predictionType: SingleFileFindings['predictionType'];
  let predictionTypeFrom: SingleFileFindings['predictionTypeFrom'];
  if (sidecar) {
    predictionType = params.parameterization === 'v' ? 'v_prediction' : 'epsilon';
    predictionTypeFrom = 'sidecar';
  } else if (sd2) {
    predictionType = scheduler.prediction_type as SingleFileFindings['predictionType'];
    predictionTypeFrom = found.kind === 'sd2' ? 'stabilityai/stable-diffusion-2-1 default' : 'stabilityai/stable-diffusion-2-inpainting default';
  } else {
    predictionType = 'epsilon';
    predictionTypeFrom = 'SD 1.x default';
  }
  scheduler = { ...scheduler, prediction_type: predictionType };
  if (typeof params.linear_start === 'number') scheduler.beta_start = params.linear_start;
  if (typeof params.linear_end === 'number') scheduler.beta_end = params.linear_end;
  if (typeof params.timesteps === 'number') scheduler.num_train_timesteps = params.timesteps;
  const unetKeys = file.keys().filter((k) => k.startsWith(found.ema === 'ema-only' ? EMA : UNET));
  const dtypes = [...new Set(unetKeys.map((k) => file.info(k)!.dtype))].sort();
  return {
    configs: { unet, vae, textEncoder, scheduler },
    findings: {
      kind: found.kind, inChannels: found.inChannels, predictionType, predictionTypeFrom, dtypes, sidecar: sidecar?.name,
      textEncoder: sd2 ? 'open-clip' : 'clip', padToken: sd2 ? OPEN_CLIP_PAD_TOKEN : '<|endoftext|>',
      unetWeights: found.ema === 'ema-only' ? 'ema-only' : found.ema === 'both' ? 'model (EMA copies ignored)' : 'model',
    },
  };
}
