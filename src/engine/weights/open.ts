// Opening models as diffusers-named WeightSources, whatever their format on disk: diffusers folders,
// single-file SD 1.x / 2.x checkpoints (.safetensors / .ckpt), ControlNets and VAEs in either layout.
import { existsSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { loadClipTokenizer, type ClipTokenizer } from '../text/clip-tokenizer.ts';
import { SD15_CONFIGS, SD15_CONTROLNET_CONFIG, type ClipTextConfig, type ControlNetConfig, type SdConfigs, type UNetConfig, type VaeConfig } from './configs.ts';
import { clipPrefix, clipTextKeyPairs, isClipBuffer } from './convert-ldm-clip.ts';
import { ldmControlNetKeyPairs } from './convert-controlnet.ts';
import { isUnusedOpenClipKey, OPEN_CLIP_PREFIX, openClipTextKeyPairs } from './convert-open-clip.ts';
import { convertKeys, type KeyPair } from './convert-keys.ts';
import { ldmUnetKeyPairs } from './convert-ldm-unet.ts';
import { ldmVaeKeyPairs } from './convert-ldm-vae.ts';
import { openSafetensors } from './safetensors.ts';
import { openTorchCheckpoint } from './torch-pickle.ts';
import type { WeightSource } from './types.ts';
import { mergedSources, renamedView } from './views.ts';
import { emaName, inferSingleFileConfigs, readSidecarConfig, type SingleFileFindings } from './single-file-config.ts';

export interface SdModel {
  format: 'diffusers' | 'single-file';
  /** For single files: what the tensors and the sidecar config said (kind, input channels, prediction type, ...). */
  findings?: SingleFileFindings;
  unet: WeightSource;
  textEncoder: WeightSource;
  vae: WeightSource;
  configs: SdConfigs;
  tokenizer: ClipTokenizer;
}

export interface LoadedComponent<C> {
  weights: WeightSource;
  config: C;
}

const TORCH_EXT = /\.(bin|pt|pth|ckpt)$/i;

/** One weights file: .safetensors, a torch.save file (.bin/.pt/.pth/.ckpt), or a sharded *.index.json. */
export async function openWeightsFile(path: string): Promise<WeightSource> {
  if (/\.index(\.fp16)?\.json$/.test(path)) {
    const index = JSON.parse(await readFile(path, 'utf8')) as { weight_map: Record<string, string> };
    const shards = [...new Set(Object.values(index.weight_map))].sort();
    return mergedSources(await Promise.all(shards.map((s) => openWeightsFile(join(dirname(path), s)))));
  }
  if (/\.safetensors$/i.test(path)) return openSafetensors(path);
  if (TORCH_EXT.test(path)) return openTorchCheckpoint(path);
  throw new Error(`${path}: unknown weights file type (expected .safetensors, .bin, .pt, .pth or .ckpt)`);
}

/** The weights file of a diffusers / transformers component folder, in the order diffusers prefers them. */
export async function openComponentFolder(dir: string): Promise<WeightSource> {
  const files = new Set(await readdir(dir));
  for (const stem of ['diffusion_pytorch_model', 'model']) {
    for (const name of [`${stem}.safetensors`, `${stem}.safetensors.index.json`, `${stem}.fp16.safetensors`,
      `${stem}.safetensors.index.fp16.json`, `${stem}.bin`, `${stem}.bin.index.json`, `${stem}.fp16.bin`]) {
      if (files.has(name)) return openWeightsFile(join(dir, name));
    }
  }
  const torchName = ['pytorch_model.bin', 'pytorch_model.bin.index.json'].find((n) => files.has(n));
  if (torchName) return openWeightsFile(join(dir, torchName));
  throw new Error(`${dir}: no weights file (diffusion_pytorch_model.safetensors, model.safetensors, ... )`);
}

async function readJson<T>(path: string): Promise<T> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Checks that a diffusers-named source holds exactly the weights the config implies. */
function expectKeys(source: WeightSource, pairs: KeyPair[], component: string, file: string): WeightSource {
  return convertKeys(source, pairs.map((p) => ({ diffusers: p.diffusers, original: p.diffusers })), { component, file, prefix: '' });
}

/** Text encoder weights under canonical "text_model.*" names, from any of the CLIP layouts. */
function textEncoderView(source: WeightSource, config: ClipTextConfig, base: string, file: string): WeightSource {
  const prefix = clipPrefix(source.keys(), base);
  return convertKeys(source, clipTextKeyPairs(config).pairs, { component: 'CLIP text encoder', file, prefix, ignore: isClipBuffer });
}

// VAE folders written by diffusers < 0.14 name the mid-block attention query / key / value / proj_attn.
const OLD_VAE_ATTENTION: [RegExp, string][] = [[/\.query\./, '.to_q.'], [/\.key\./, '.to_k.'], [/\.value\./, '.to_v.'], [/\.proj_attn\./, '.to_out.0.']];
function modernVaeNames(source: WeightSource): WeightSource {
  if (!source.keys().some((k) => k.includes('.attentions.0.query.'))) return source;
  return renamedView(source, (k) => OLD_VAE_ATTENTION.reduce((s, [re, to]) => s.replace(re, to), k), 'vae-attention-names');
}

/** A diffusers pipeline folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/). */
export async function openDiffusersFolder(dir: string): Promise<SdModel> {
  const configs: SdConfigs = {
    unet: await readJson<UNetConfig>(join(dir, 'unet', 'config.json')),
    vae: await readJson<VaeConfig>(join(dir, 'vae', 'config.json')),
    textEncoder: await readJson<ClipTextConfig>(join(dir, 'text_encoder', 'config.json')),
    scheduler: existsSync(join(dir, 'scheduler', 'scheduler_config.json'))
      ? await readJson<Record<string, unknown>>(join(dir, 'scheduler', 'scheduler_config.json'))
      : SD15_CONFIGS.scheduler,
  };
  const [unetFile, vaeFile, textFile] = await Promise.all(['unet', 'vae', 'text_encoder'].map((c) => openComponentFolder(join(dir, c))));
  return {
    format: 'diffusers',
    unet: expectKeys(unetFile!, ldmUnetKeyPairs(configs.unet).pairs, 'UNet', join(dir, 'unet')),
    vae: expectKeys(modernVaeNames(vaeFile!), ldmVaeKeyPairs(configs.vae).pairs, 'VAE', join(dir, 'vae')),
    textEncoder: textEncoderView(textFile!, configs.textEncoder, '', join(dir, 'text_encoder')),
    configs,
    tokenizer: await loadClipTokenizer(existsSync(join(dir, 'tokenizer')) ? join(dir, 'tokenizer') : undefined, { vocabSize: configs.textEncoder.vocab_size }),
  };
}

/**
 * A single-file SD 1.x / 2.x checkpoint in the original LDM layout (model.diffusion_model.*, first_stage_model.*,
 * and cond_stage_model.transformer.* (CLIP, SD 1.x) or cond_stage_model.model.* (OpenCLIP, SD 2.x)). Its configs
 * are what its tensors and a sidecar config beside it say over `configs` (single-file-config.ts: SD 1.5's for SD 1.x
 * unless told; inpainting UNets, v-prediction, SD 2.x widths, EMA-only files, ...). Non-weight entries
 * (alphas_cumprod, position_ids, the VAE's training loss, OpenCLIP's unused last layer and projection) are ignored;
 * when EMA copies sit beside the weights they are not used (diffusers' default); a file with only EMA weights uses
 * those. The tokenizer is `opts.tokenizerDir`'s, else the bundled CLIP vocabulary, padding with "!" for SD 2.x as
 * stabilityai/stable-diffusion-2's tokenizer does. Throws UnsupportedCheckpoint (what was found) for other models.
 */
export async function openSingleFileCheckpoint(path: string, base: SdConfigs = SD15_CONFIGS, opts: { tokenizerDir?: string } = {}): Promise<SdModel> {
  const file = await openWeightsFile(path);
  const { configs, findings } = inferSingleFileConfigs(file, base, await readSidecarConfig(path));
  const unetPairs = ldmUnetKeyPairs(configs.unet).pairs;
  let unetFile: WeightSource = file;
  if (findings.unetWeights === 'ema-only') {
    const full = new Map(unetPairs.map((p) => [emaName(`model.diffusion_model.${p.original}`), `model.diffusion_model.${p.original}`]));
    unetFile = renamedView(file, (k) => full.get(k) ?? (k.startsWith('model_ema.') ? undefined : k), 'ema-only');
  }
  // converted in this order, so the first mismatch reported is the UNet's
  const unet = convertKeys(unetFile, unetPairs, { component: 'UNet', file: path, prefix: 'model.diffusion_model.' });
  const vae = convertKeys(file, ldmVaeKeyPairs(configs.vae).pairs, { component: 'VAE', file: path, prefix: 'first_stage_model.', ignore: (k) => k.startsWith('loss.') });
  const openClip = findings.textEncoder === 'open-clip';
  const textEncoder = openClip
    ? convertKeys(file, openClipTextKeyPairs(configs.textEncoder).pairs, { component: 'OpenCLIP text encoder', file: path, prefix: OPEN_CLIP_PREFIX, ignore: isUnusedOpenClipKey(configs.textEncoder) })
    : textEncoderView(file, configs.textEncoder, 'cond_stage_model.transformer.', path);
  return {
    format: 'single-file',
    findings,
    unet,
    vae,
    textEncoder,
    configs,
    tokenizer: await loadClipTokenizer(opts.tokenizerDir, { vocabSize: configs.textEncoder.vocab_size, ...(openClip ? { padToken: findings.padToken } : {}) }),
  };
}

/** A base model: a diffusers folder or a single-file checkpoint (`opts.tokenizerDir`: a tokenizer for a single file). */
export function openBaseModel(path: string, configs?: SdConfigs, opts: { tokenizerDir?: string } = {}): Promise<SdModel> {
  return statSync(path).isDirectory() ? openDiffusersFolder(path) : openSingleFileCheckpoint(path, configs, opts);
}

/** Finds the one weights file of a model folder that is not in diffusers layout (e.g. control_v11p_sd15_canny.pth). */
async function singleWeightsIn(dir: string): Promise<string | undefined> {
  const files = (await readdir(dir)).filter((f) => /\.(safetensors|bin|pt|pth|ckpt)$/i.test(f));
  return files.length === 1 ? join(dir, files[0]!) : undefined;
}

/**
 * A ControlNet: a diffusers folder (config.json + weights), or one file in the ControlNet 1.0/1.1 layout
 * (control_model.* keys, or the same keys without the prefix) or already in diffusers names.
 */
export async function openControlNet(pathOrDir: string, config: ControlNetConfig = SD15_CONTROLNET_CONFIG): Promise<LoadedComponent<ControlNetConfig>> {
  let path = pathOrDir;
  if (statSync(pathOrDir).isDirectory()) {
    if (existsSync(join(pathOrDir, 'config.json'))) {
      const cfg = await readJson<ControlNetConfig>(join(pathOrDir, 'config.json'));
      const weights = expectKeys(await openComponentFolder(pathOrDir), ldmControlNetKeyPairs(cfg).pairs, 'ControlNet', pathOrDir);
      return { weights, config: cfg };
    }
    const single = await singleWeightsIn(pathOrDir);
    if (!single) throw new Error(`${pathOrDir}: no config.json and not exactly one weights file`);
    path = single;
  }
  const file = await openWeightsFile(path);
  const pairs = ldmControlNetKeyPairs(config).pairs;
  if (file.info('controlnet_cond_embedding.conv_in.weight')) return { weights: expectKeys(file, pairs, 'ControlNet', path), config };
  const prefix = file.info('control_model.time_embed.0.weight') ? 'control_model.' : '';
  if (!file.info(`${prefix}input_hint_block.0.weight`)) throw new Error(`${basename(path)}: not a ControlNet checkpoint (no input_hint_block)`);
  return { weights: convertKeys(file, pairs, { component: 'ControlNet', file: path, prefix }), config };
}

/** A VAE: a diffusers folder, or one file in diffusers names or the LDM layout (with or without first_stage_model.). */
export async function openVae(pathOrDir: string, config: VaeConfig = SD15_CONFIGS.vae): Promise<LoadedComponent<VaeConfig>> {
  let path = pathOrDir;
  if (statSync(pathOrDir).isDirectory()) {
    if (existsSync(join(pathOrDir, 'config.json'))) {
      const cfg = await readJson<VaeConfig>(join(pathOrDir, 'config.json'));
      return { weights: expectKeys(modernVaeNames(await openComponentFolder(pathOrDir)), ldmVaeKeyPairs(cfg).pairs, 'VAE', pathOrDir), config: cfg };
    }
    const single = await singleWeightsIn(pathOrDir);
    if (!single) throw new Error(`${pathOrDir}: no config.json and not exactly one weights file`);
    path = single;
  }
  const file = await openWeightsFile(path);
  const pairs = ldmVaeKeyPairs(config).pairs;
  if (file.keys().some((k) => k.startsWith('encoder.down_blocks.'))) return { weights: expectKeys(modernVaeNames(file), pairs, 'VAE', path), config };
  const prefix = file.keys().some((k) => k.startsWith('first_stage_model.')) ? 'first_stage_model.' : '';
  const ignore = (k: string) => k.startsWith('loss.') || (prefix === '' && k.startsWith('model_ema.'));
  return { weights: convertKeys(file, pairs, { component: 'VAE', file: path, prefix, ignore }), config };
}
