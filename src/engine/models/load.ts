// Opens the networks of a model on disk (config + weights under diffusers names) and compiles their ONNX
// graphs through the compiled-model cache. Reading files and converting layouts (diffusers folders with fp32 or
// fp16 files, single-file LDM checkpoints, ControlNet 1.x and VAE files) is the weights module's job
// (weights/open.ts); this file turns its results into networks and graphs.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Built } from '../onnx/session.ts';
import { compiledModel, isCompiled } from '../onnx/session.ts';
import type { GraphBuilder } from '../onnx/graph.ts';
import type { ClipTokenizer } from '../text/clip-tokenizer.ts';
import type { ControlNetConfig, SdConfigs, VaeConfig } from '../weights/configs.ts';
import { openBaseModel as openSdModel, openComponentFolder, openControlNet, openVae } from '../weights/open.ts';
import type { WeightSource } from '../weights/types.ts';
import { buildClipText, type ClipTextConfigJson } from './clip-text.ts';
import { buildControlNet } from './controlnet.ts';
import type { Net } from './layers.ts';
import { buildUNet, type UNetBuildOptions } from './unet.ts';
import type { UNetConfigJson } from './unet-config.ts';
import { buildVaeDecoder, buildVaeEncoder, vaeFloatType, type VaeConfigJson } from './vae.ts';
import { floatTypeOf, type Fp32Island, type Precision } from '../onnx/precision.ts';

/** One network: its diffusers config.json and its weights under diffusers names. */
export interface NetworkSource<C = Record<string, any>> {
  config: C;
  weights: WeightSource;
  /** Where it came from, for error messages. */
  origin: string;
}

export interface BaseModel {
  format: 'diffusers' | 'single-file';
  unet: NetworkSource<UNetConfigJson>;
  textEncoder: NetworkSource<ClipTextConfigJson>;
  vae: NetworkSource<VaeConfigJson>;
  schedulerConfig: Record<string, unknown>;
  tokenizer: ClipTokenizer;
}

/** An SD 1.x / 2.x base model: a diffusers folder, or a single-file checkpoint (configs default to SD 1.5's). */
export async function openBaseModel(path: string, singleFileConfigs?: SdConfigs, opts: { tokenizerDir?: string } = {}): Promise<BaseModel> {
  const m = await openSdModel(path, singleFileConfigs, opts);
  return {
    format: m.format,
    unet: { config: m.configs.unet, weights: m.unet, origin: path },
    textEncoder: { config: m.configs.textEncoder, weights: m.textEncoder, origin: path },
    vae: { config: m.configs.vae, weights: m.vae, origin: path },
    schedulerConfig: m.configs.scheduler,
    tokenizer: m.tokenizer,
  };
}

/** One diffusers component folder (config.json + weights), e.g. a base model's unet/ on its own. */
export async function openComponent<C = Record<string, any>>(dir: string): Promise<NetworkSource<C>> {
  let config: C;
  try {
    config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${join(dir, 'config.json')}: ${(e as Error).message}`);
  }
  return { config, weights: await openComponentFolder(dir), origin: dir };
}

/** A ControlNet folder or single file (ControlNet 1.x layout; `config` is used when the file has none). */
export async function openControlNetModel(path: string, config?: ControlNetConfig): Promise<NetworkSource<UNetConfigJson>> {
  const c = await openControlNet(path, config);
  return { config: c.config, weights: c.weights, origin: path };
}

/** A VAE folder or single file (diffusers or LDM names). */
export async function openVaeModel(path: string, config?: VaeConfig): Promise<NetworkSource<VaeConfigJson>> {
  const v = await openVae(path, config);
  return { config: v.config, weights: v.weights, origin: path };
}

export type NetworkKind = 'clip-text' | 'unet' | 'controlnet' | 'vae-encoder' | 'vae-decoder';

export interface CompileOptions {
  lora?: boolean;
  /** ENGINE_PRECISION: fp16 or fp32 (default) weights and activations; graph I/O is float32 either way. */
  precision?: Precision;
  /** Extra float32 islands of float16 graphs (precision.ts FP32_ISLANDS): the runtime's defaultFp32Islands (`conv` on
   *  WebGPU), or bench/gpu.sh --diagnose's variants. Nothing changes in a float32 graph. */
  fp32Islands?: readonly Fp32Island[];
  /** UNet only. */
  unet?: Omit<UNetBuildOptions, 'lora' | 'precision' | 'fp32Islands'>;
}

/** The island families that change each kind's graph: CLIP's text encoder has no Conv; it and the VAE's mid-block
 *  attention call mha directly (the attention island lives in layers.ts attention(), the UNet's and ControlNet's). */
const ISLAND_FAMILIES: Record<NetworkKind, readonly Fp32Island[]> = {
  'clip-text': ['linear', 'norm'],
  unet: ['attention', 'linear', 'conv', 'norm'],
  controlnet: ['attention', 'linear', 'conv', 'norm'],
  'vae-encoder': ['linear', 'conv', 'norm'],
  'vae-decoder': ['linear', 'conv', 'norm'],
};

/** The islands that change a network's graph: those of its families, deduplicated and sorted (the cache key's form). */
function islandsOf(kind: NetworkKind, opts: CompileOptions): Fp32Island[] {
  return [...new Set(opts.fp32Islands ?? [])].filter((i) => ISLAND_FAMILIES[kind].includes(i)).sort();
}

function builder(kind: NetworkKind, src: NetworkSource<any>, opts: CompileOptions): () => Built {
  const fp32Islands = islandsOf(kind, opts);
  const withSlots = (b: { graph: GraphBuilder; net: Net }): Built => ({ graph: b.graph, info: { loraSlots: b.net.loraSlots } });
  switch (kind) {
    case 'clip-text': return () => withSlots(buildClipText(src.config, src.weights, { lora: opts.lora, precision: opts.precision, fp32Islands }));
    case 'unet': return () => withSlots(buildUNet(src.config, src.weights, { ...opts.unet, lora: opts.lora, precision: opts.precision, fp32Islands }));
    case 'controlnet': return () => buildControlNet(src.config, src.weights, { precision: opts.precision, fp32Islands }).graph;
    case 'vae-encoder': return () => buildVaeEncoder(src.config, src.weights, { precision: opts.precision, fp32Islands }).graph;
    case 'vae-decoder': return () => buildVaeDecoder(src.config, src.weights, { precision: opts.precision, fp32Islands }).graph;
  }
}

/**
 * The compiled .onnx of one network (built and written on the first call, then read from the cache);
 * `info.loraSlots` lists the LoRA slots of clip-text and unet graphs.
 * The cache key holds the config, the weights' fingerprint and the build options, the element type the graph
 * computes in among them (a VAE that force_upcast keeps float32 shares its fp32 entry) and a float16 graph's extra
 * float32 islands (WebGPU's `conv`: graphs built before it was a default are not reused); ToMe's merge function
 * is keyed by its options only.
 */
export async function compileNetwork(cacheDir: string, kind: NetworkKind, src: NetworkSource<any>, opts: CompileOptions = {}): Promise<{ path: string; built: boolean; info: unknown }> {
  return compiledModel(cacheDir, compileKey(kind, src, opts), builder(kind, src, opts));
}

/** Whether compileNetwork would find the graph in the cache (no build). */
export function isNetworkCompiled(cacheDir: string, kind: NetworkKind, src: NetworkSource<any>, opts: CompileOptions = {}): boolean {
  return isCompiled(cacheDir, compileKey(kind, src, opts));
}

function compileKey(kind: NetworkKind, src: NetworkSource<any>, opts: CompileOptions): unknown {
  const t = opts.unet?.tome;
  // a switchable graph reads the ratio (and, with a fed table, the random choice) at run time
  const tome = t ? (t.switchable ? { switchable: true, maxDownsample: t.maxDownsample, sx: t.sx, sy: t.sy, useRand: t.useRand }
    : { ratio: t.ratio, maxDownsample: t.maxDownsample, sx: t.sx, sy: t.sy, useRand: t.useRand, seed: t.seed }) : null;
  const floatType = kind === 'vae-encoder' || kind === 'vae-decoder' ? vaeFloatType(src.config, opts.precision) : floatTypeOf(opts.precision);
  // float16 graphs of upcast_attention configs attend in float32 since this key was added (older entries did not)
  const upcast = floatType === 'float16' && (kind === 'unet' || kind === 'controlnet') && src.config.upcast_attention === true;
  const islands = floatType === 'float16' ? islandsOf(kind, opts) : [];
  return {
    kind, config: src.config, weights: src.weights.fingerprint(), lora: opts.lora ?? false, controlnetInputs: opts.unet?.controlnetInputs ?? false, tome,
    // absent for float32, so the float32 entries built before precisions existed stay valid
    ...(floatType === 'float32' ? {} : { floatType }),
    ...(upcast ? { attention: 'float32' } : {}),
    // extra float32 islands only where they change the graph (float16, an op family the network has): the entries
    // of graphs without islands keep their key
    ...(islands.length ? { fp32Islands: islands } : {}),
  };
}
