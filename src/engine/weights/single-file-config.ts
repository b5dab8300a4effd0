// What a single-file checkpoint is, read from its tensors the way diffusers' from_single_file reads them
// (loaders/single_file_utils.py: infer_diffusers_model_type, create_unet_diffusers_config_from_ldm) and from the
// sidecar config A1111 reads beside it (<file stem>.yaml, here also .yml or .json, in the original LDM layout):
// - SD 1.x, and SD 1.x inpainting (conv_in with 9 input channels: latents, mask, masked-image latents);
// - the prediction type: the sidecar's model.params.parameterization ("v" → v_prediction, as A1111 builds the
//   model; diffusers' from_single_file ignores it for SD 1.x) and its beta schedule;
// - the UNet architecture from the sidecar's unet_config (create_unet_diffusers_config_from_ldm), else the base
//   configs (SD 1.5's) with the input channels the tensors show;
// - where the UNet weights are: model.diffusion_model.* (the non-EMA ones when model_ema.* copies exist too, as
//   diffusers' default extract_ema=False), or only the flattened EMA names (model_ema.diffusion_model<path>);
// - anything else (SDXL, SD 2.x's OpenCLIP text encoder, SD 3, Flux, a ControlNet or LoRA file) is refused with
//   an UnsupportedCheckpoint that says what was found.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { SdConfigs, UNetConfig } from './configs.ts';
import type { WeightSource } from './types.ts';

/** A checkpoint we cannot serve; the message says what its tensors (or sidecar) show. */
export class UnsupportedCheckpoint extends Error {
  override readonly name = 'UnsupportedCheckpoint';
}

export type SingleFileKind = 'sd1' | 'sd1-inpainting';

export interface SingleFileFindings {
  kind: SingleFileKind;
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

/** What the tensors say the file is; throws UnsupportedCheckpoint for anything but SD 1.x (incl. inpainting). */
export function detectCheckpoint(file: WeightSource): { kind: SingleFileKind; inChannels: number; ema: 'none' | 'both' | 'ema-only' } {
  const keys = file.keys();
  const has = (prefix: string) => keys.some((k) => k.startsWith(prefix));
  if (has('conditioner.embedders.')) throw new UnsupportedCheckpoint('an SDXL checkpoint (conditioner.embedders.*); only SD 1.x is supported');
  if (has('cond_stage_model.model.')) throw new UnsupportedCheckpoint('an SD 2.x checkpoint (OpenCLIP text encoder, cond_stage_model.model.*); only SD 1.x single files are supported (an SD 2.x diffusers folder can be used)');
  if (has('model.diffusion_model.joint_blocks.') || has('text_encoders.')) throw new UnsupportedCheckpoint('an SD 3 checkpoint; only SD 1.x is supported');
  if (has('double_blocks.') || has('model.diffusion_model.double_blocks.')) throw new UnsupportedCheckpoint('a Flux checkpoint; only SD 1.x is supported');
  const model = has(UNET);
  const ema = keys.filter((k) => k.startsWith(EMA)).length;
  if (!model && ema === 0) {
    if (has('control_model.') || has('input_hint_block.')) throw new UnsupportedCheckpoint('a ControlNet checkpoint, not a base model (put it under controlnet/)');
    if (keys.some((k) => /lora_(up|down|A|B)/.test(k))) throw new UnsupportedCheckpoint('a LoRA, not a base model (put it under lora/)');
    throw new UnsupportedCheckpoint(`not an SD single-file checkpoint (no model.diffusion_model.* or model_ema.* UNet keys; ${keys.length} tensors, e.g. ${keys.slice(0, 3).join(', ')})`);
  }
  const convIn = file.info(model ? CONV_IN : emaName(CONV_IN));
  if (!convIn || convIn.shape.length !== 4) throw new UnsupportedCheckpoint('its UNet has no input convolution (input_blocks.0.0.weight)');
  const inChannels = convIn.shape[1]!;
  if (inChannels !== 4 && inChannels !== 9) throw new UnsupportedCheckpoint(`its UNet takes ${inChannels} input channels; SD 1.x takes 4 (9 for inpainting)`);
  const attn = keys.find((k) => /(^|\.)input_blocks\.\d+\.1\.transformer_blocks\.0\.attn2\.to_k\.weight$/.test(k) || /input_blocks\d+1transformer_blocks0attn2to_kweight$/.test(k));
  const context = attn ? file.info(attn)!.shape[1] : undefined;
  if (context !== undefined && context !== 768 && context >= 1024) {
    throw new UnsupportedCheckpoint(`its UNet attends to ${context}-wide text embeddings (SD 2.x or later); only SD 1.x is supported`);
  }
  return { kind: inChannels === 9 ? 'sd1-inpainting' : 'sd1', inChannels, ema: model ? (ema > 100 ? 'both' : 'none') : 'ema-only' };
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
 * The configs of a single-file checkpoint: `base` (SD 1.5's unless told) with what the tensors and the sidecar
 * say. Throws UnsupportedCheckpoint when the sidecar and the tensors disagree on the input channels.
 */
export function inferSingleFileConfigs(file: WeightSource, base: SdConfigs, sidecar?: { name: string; config: LdmConfig }): { configs: SdConfigs; findings: SingleFileFindings } {
  const found = detectCheckpoint(file);
  const params = sidecar?.config.model?.params ?? {};
  let unet = sidecar ? unetConfigFromLdm(sidecar.config, base.unet) : base.unet;
  if (sidecar && params.unet_config?.params?.in_channels !== undefined && unet.in_channels !== found.inChannels) {
    throw new UnsupportedCheckpoint(`its config ${sidecar.name} says ${unet.in_channels} UNet input channels but the weights have ${found.inChannels}`);
  }
  unet = { ...unet, in_channels: found.inChannels };
  const predictionType = params.parameterization === 'v' ? 'v_prediction' : 'epsilon';
  const scheduler: Record<string, unknown> = { ...base.scheduler, prediction_type: predictionType };
  if (typeof params.linear_start === 'number') scheduler.beta_start = params.linear_start;
  if (typeof params.linear_end === 'number') scheduler.beta_end = params.linear_end;
  if (typeof params.timesteps === 'number') scheduler.num_train_timesteps = params.timesteps;
  const unetKeys = file.keys().filter((k) => k.startsWith(found.ema === 'ema-only' ? EMA : UNET));
  const dtypes = [...new Set(unetKeys.map((k) => file.info(k)!.dtype))].sort();
  return {
    configs: { ...base, unet, scheduler },
    findings: {
      kind: found.kind, inChannels: found.inChannels, predictionType, dtypes, sidecar: sidecar?.name,
      unetWeights: found.ema === 'ema-only' ? 'ema-only' : found.ema === 'both' ? 'model (EMA copies ignored)' : 'model',
    },
  };
}
