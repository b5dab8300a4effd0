// AutoencoderKL (SD VAE) as two ONNX graphs, equal to diffusers.
// Encoder: sample [B,3,H,W] in [-1,1] → mean, std of the latent Gaussian (caller samples mean + std·ε).
// Decoder: latent [B,4,h,w] (already divided by scaling_factor) → sample [B,3,H,W] in about [-1,1].
import { GraphBuilder, type Value } from '../onnx/graph.ts';
import type { WeightSource } from '../weights/types.ts';
import { conv, downsample, groupNorm, linear, mha, Net, resnetBlock, silu, toTokens, fromTokens, upsample } from './layers.ts';
import { WeightReader } from './weight-reader.ts';
import { floatTypeOf, type Fp32Island, type Precision } from '../onnx/precision.ts';

export interface VaeBuildOptions {
  /** The pipeline's precision. fp16 builds a float16 VAE only when the config sets force_upcast false: diffusers
   *  upcasts the VAE to float32 in fp16 pipelines otherwise (SD 1.5's VAE overflows in float16). */
  precision?: Precision;
  /** Extra float32 islands when the VAE is float16 (precision.ts FP32_ISLANDS; defaultFp32Islands chooses them per
   *  provider); nothing changes in a float32 VAE. */
  fp32Islands?: Fp32Island[];
}

/** The type the VAE runs in for a pipeline precision (diffusers' needs_upcasting: fp16 and force_upcast, default true). */
export function vaeFloatType(config: VaeConfigJson, precision: Precision | undefined): 'float32' | 'float16' {
  return floatTypeOf(precision === 'fp16' && config.force_upcast === false ? 'fp16' : 'fp32');
}

export interface VaeConfigJson {
  in_channels?: number;
  out_channels?: number;
  latent_channels?: number;
  block_out_channels?: number[];
  layers_per_block?: number;
  norm_num_groups?: number;
  down_block_types?: string[];
  up_block_types?: string[];
  scaling_factor?: number;
  sample_size?: number | number[];
  use_quant_conv?: boolean;
  use_post_quant_conv?: boolean;
  mid_block_add_attention?: boolean;
  force_upcast?: boolean;
  [k: string]: unknown;
}

interface VaeArch {
  blockOut: number[];
  layers: number;
  groups: number;
  latent: number;
  midAttention: boolean;
}

const EPS = 1e-6;

function arch(c: VaeConfigJson): VaeArch {
  const blockOut = c.block_out_channels ?? [64];
  for (const t of c.down_block_types ?? []) if (t !== 'DownEncoderBlock2D') throw new Error(`VAE config: down block ${t} is not supported`);
  for (const t of c.up_block_types ?? []) if (t !== 'UpDecoderBlock2D') throw new Error(`VAE config: up block ${t} is not supported`);
  return {
    blockOut, layers: c.layers_per_block ?? 1, groups: c.norm_num_groups ?? 32, latent: c.latent_channels ?? 4,
    midAttention: c.mid_block_add_attention ?? true,
  };
}

/** The VAE mid-block Attention: group norm, one head over all channels, residual. x is [B, C, H, W]. */
function vaeAttention(n: Net, x: Value, prefix: string, groups: number): Value {
  const g = n.g;
  const c = n.w.shape(`${prefix}.group_norm.weight`)[0]!;
  const t = toTokens(g, groupNorm(n, x, `${prefix}.group_norm`, groups, EPS), c);
  const o = mha(g, linear(n, t, `${prefix}.to_q`), linear(n, t, `${prefix}.to_k`), linear(n, t, `${prefix}.to_v`), 1);
  return g.op('Add', [fromTokens(g, linear(n, o, `${prefix}.to_out.0`), x), x]);
}

function vaeMid(n: Net, a: VaeArch, h: Value, p: string): Value {
  const res = { groups: a.groups, eps: EPS };
  h = resnetBlock(n, h, undefined, `${p}.mid_block.resnets.0`, res);
  if (a.midAttention) h = vaeAttention(n, h, `${p}.mid_block.attentions.0`, a.groups);
  return resnetBlock(n, h, undefined, `${p}.mid_block.resnets.1`, res);
}

export function buildVaeEncoder(config: VaeConfigJson, src: WeightSource, opts: VaeBuildOptions = {}): { graph: GraphBuilder } {
  const a = arch(config);
  const g = new GraphBuilder('vae_encoder', { floatType: vaeFloatType(config, opts.precision) });
  const reader = new WeightReader(src, 'VAE encoder');
  const n = new Net(g, reader, false, opts.fp32Islands);
  const x = g.input('sample', 'float32', ['batch', config.in_channels ?? 3, 'height', 'width']);
  let h = conv(n, g.toFloat(x), 'encoder.conv_in');
  const res = { groups: a.groups, eps: EPS };
  a.blockOut.forEach((_, i) => {
    for (let j = 0; j < a.layers; j++) h = resnetBlock(n, h, undefined, `encoder.down_blocks.${i}.resnets.${j}`, { ...res, channels: a.blockOut[i] });
    if (i < a.blockOut.length - 1) h = downsample(n, h, `encoder.down_blocks.${i}.downsamplers.0`, 0);
  });
  h = vaeMid(n, a, h, 'encoder');
  h = conv(n, silu(g, groupNorm(n, h, 'encoder.conv_norm_out', a.groups, EPS)), 'encoder.conv_out');
  if (config.use_quant_conv ?? true) h = conv(n, h, 'quant_conv');
  const [mean, logvar] = g.opN('Split', [h], 2, { axis: 1, num_outputs: 2 }) as [Value, Value];
  // DiagonalGaussianDistribution: logvar clamped to [-30, 20], std = exp(logvar / 2)
  const std = g.op('Exp', [g.op('Mul', [g.op('Clip', [logvar, g.scalar(-30), g.scalar(20)]), g.scalar(0.5)])]);
  const f = 2 ** (a.blockOut.length - 1);
  const shape = ['batch', a.latent, `height/${f}`, `width/${f}`];
  g.output(g.fromFloat(mean), 'mean', 'float32', shape);
  g.output(g.fromFloat(std), 'std', 'float32', shape);
  reader.assertAllUsed((k) => !k.startsWith('encoder.') && k !== 'quant_conv.weight' && k !== 'quant_conv.bias');
  return { graph: g };
}

export function buildVaeDecoder(config: VaeConfigJson, src: WeightSource, opts: VaeBuildOptions = {}): { graph: GraphBuilder } {
  const a = arch(config);
  const g = new GraphBuilder('vae_decoder', { floatType: vaeFloatType(config, opts.precision) });
  const reader = new WeightReader(src, 'VAE decoder');
  const n = new Net(g, reader, false, opts.fp32Islands);
  const z = g.toFloat(g.input('latent', 'float32', ['batch', a.latent, 'height', 'width']));
  let h = (config.use_post_quant_conv ?? true) ? conv(n, z, 'post_quant_conv') : z;
  h = conv(n, h, 'decoder.conv_in');
  h = vaeMid(n, a, h, 'decoder');
  const res = { groups: a.groups, eps: EPS };
  a.blockOut.forEach((_, i) => {
    for (let j = 0; j < a.layers + 1; j++) h = resnetBlock(n, h, undefined, `decoder.up_blocks.${i}.resnets.${j}`, { ...res, channels: a.blockOut[a.blockOut.length - 1 - i] });
    if (i < a.blockOut.length - 1) h = upsample(n, h, `decoder.up_blocks.${i}.upsamplers.0`);
  });
  h = conv(n, silu(g, groupNorm(n, h, 'decoder.conv_norm_out', a.groups, EPS)), 'decoder.conv_out');
  const f = 2 ** (a.blockOut.length - 1);
  g.output(g.fromFloat(h), 'sample', 'float32', ['batch', config.out_channels ?? 3, `height*${f}`, `width*${f}`]);
  reader.assertAllUsed((k) => !k.startsWith('decoder.') && k !== 'post_quant_conv.weight' && k !== 'post_quant_conv.bias');
  return { graph: g };
}

/** Tile sizes diffusers derives from the config: sample_size and sample_size / 2^(levels-1); overlap 0.25. */
export function vaeTileSizes(config: VaeConfigJson): { tileSampleMinSize: number; tileLatentMinSize: number; overlapFactor: number } {
  const s = Array.isArray(config.sample_size) ? config.sample_size[0]! : (config.sample_size ?? 512);
  return { tileSampleMinSize: s, tileLatentMinSize: Math.trunc(s / 2 ** ((config.block_out_channels ?? [64]).length - 1)), overlapFactor: 0.25 };
}
