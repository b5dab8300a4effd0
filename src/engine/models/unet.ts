// UNet2DConditionModel (SD 1.x / 2.x) as an ONNX graph, equal to diffusers' forward.
// Graph I/O: sample [B,4,h,w], timestep float32 [B], encoder_hidden_states [B,S,D] → out_sample;
// with `controlnetInputs`, also down_block_additional_residual_0..N-1 and mid_block_additional_residual.
import { GraphBuilder, type Value } from '../onnx/graph.ts';
import type { WeightSource } from '../weights/types.ts';
import { conv, groupNorm, Net, resnetBlock, silu, transformer2d, upsample, type TokenMerge, type TokenMergeFactory } from './layers.ts';
import { downBlocks, midBlock, skipShapes, timeEmbedding, type TomeAt } from './unet-blocks.ts';
import { parseUNetConfig, type UNetConfigJson } from './unet-config.ts';
import { WeightReader } from './weight-reader.ts';
import { TOME_RATIO_INPUT, tomeMergeFns } from './tome.ts';
import { floatTypeOf, type Fp32Island, type Precision } from '../onnx/precision.ts';

/** tomesd's settings (tomesd.apply_patch arguments; max_downsample is a factor: 1, 2, 4 or 8). */
export interface TomeOptions {
  ratio: number;
  maxDownsample: number;
  sx: number;
  sy: number;
  useRand: boolean;
  seed: number;
  /**
   * One graph for ToMe on and off: the ratio is read from the float64 scalar input `tome_ratio` (0: no merging;
   * `ratio` is then unused) and merging sits in If branches, so the off branch runs exactly the plain attention.
   */
  switchable?: boolean;
}
/** The signature of tome.ts's tomeMergeFns (the default; a caller may pass another, e.g. with a fed table). */
export type TomeMergeFns = (g: GraphBuilder, x: Value, hw: { h: number | Value; w: number | Value }, opts: TomeOptions & { ratioValue?: Value }) => TokenMerge;

export interface UNetBuildOptions {
  /** Adds the ControlNet residual inputs (added to the skips and the mid block output, as diffusers does). */
  controlnetInputs?: boolean;
  /** Adds LoRA branch inputs (see layers.ts LoraSlot). */
  lora?: boolean;
  /** Token merging (tomesd) in the self-attention of blocks at downsample <= maxDownsample. */
  tome?: TomeOptions & { mergeFns?: TomeMergeFns };
  /** fp16: float16 weights and activations (I/O stays float32); default fp32. */
  precision?: Precision;
  /** Extra float32 islands of an fp16 graph (precision.ts FP32_ISLANDS; defaultFp32Islands chooses them per provider). */
  fp32Islands?: Fp32Island[];
}

/** Builds the graph; throws naming any weight the config does not account for (or vice versa). */
export function buildUNet(config: UNetConfigJson, src: WeightSource, opts: UNetBuildOptions = {}): { graph: GraphBuilder; net: Net } {
  const a = parseUNetConfig(config, 'UNet');
  const g = new GraphBuilder('unet', { floatType: floatTypeOf(opts.precision) });
  const n = new Net(g, new WeightReader(src, 'UNet'), opts.lora ?? false, opts.fp32Islands);
  n.upcastAttention = a.upcastAttention;
  const sample = g.input('sample', 'float32', ['batch', a.inChannels, 'height', 'width']);
  const timestep = g.input('timestep', 'float32', ['batch']);
  const ehs = g.toFloat(g.input('encoder_hidden_states', 'float32', ['batch', 'sequence', a.crossAttentionDim]));
  const shapes = skipShapes(a);
  const residuals = opts.controlnetInputs
    ? shapes.map((s, i) => g.toFloat(g.input(`down_block_additional_residual_${i}`, 'float32', ['batch', s.channels, `height/${s.factor}`, `width/${s.factor}`])))
    : undefined;
  const last = a.blockOut.length - 1;
  const midResidual = opts.controlnetInputs
    ? g.toFloat(g.input('mid_block_additional_residual', 'float32', ['batch', a.blockOut[last]!, `height/${2 ** last}`, `width/${2 ** last}`]))
    : undefined;

  // A switchable ToMe reads its ratio from an input and merges only when it is above 0.
  const ratioValue = opts.tome?.switchable ? g.input(TOME_RATIO_INPUT, 'float64', []) : undefined;
  const when = ratioValue && g.op('Greater', [ratioValue, g.const(Float64Array.of(0), [], 'float64', 'zero')]);
  const tomeAt: TomeAt = (factor) => {
    const t = opts.tome;
    if (!t || factor > t.maxDownsample) return undefined; // tomesd: downsample factor (1, 2, 4, 8) <= max_downsample
    const mergeFns = t.mergeFns ?? tomeMergeFns;
    const factory: TokenMergeFactory = Object.assign((x: Value, hw: { h: Value; w: Value }) => mergeFns(g, x, hw, { ...t, ratioValue }), { when });
    return factory;
  };

  const temb = timeEmbedding(n, a, timestep);
  let h = conv(n, g.toFloat(sample), 'conv_in');
  const down = downBlocks(n, a, h, temb, ehs, tomeAt);
  h = down.h;
  let skips = down.skips;
  if (residuals) skips = skips.map((s, i) => g.op('Add', [s, residuals[i]!]));
  h = midBlock(n, a, h, temb, ehs, tomeAt);
  if (midResidual) h = g.op('Add', [h, midResidual]);

  const res = { groups: a.groups, eps: a.eps };
  const rev = [...a.blockOut].reverse();
  a.up.forEach((blk, i) => {
    const p = `up_blocks.${i}`;
    for (let j = 0; j < blk.resnets; j++) {
      const skip = skips.pop()!;
      h = n.withLora(() => resnetBlock(n, g.op('Concat', [h, skip], { axis: 1 }), temb, `${p}.resnets.${j}`, { ...res, channels: rev[i] }));
      if (blk.type === 'CrossAttnUpBlock2D') {
        h = transformer2d(n, h, ehs, `${p}.attentions.${j}`, {
          heads: blk.heads, groups: a.groups, layers: blk.transformerLayers, linearProjection: a.linearProjection,
          tome: tomeAt(2 ** (a.up.length - 1 - i)),
        });
      }
    }
    // diffusers upsamples to the next skip's size (matters when h, w are not multiples of 2^levels)
    if (i < a.up.length - 1) h = upsample(n, h, `${p}.upsamplers.0`, skips[skips.length - 1]);
  });
  if (skips.length) throw new Error(`UNet config: ${skips.length} skip connections left unused`);
  h = silu(g, groupNorm(n, h, 'conv_norm_out', a.groups, a.eps));
  h = conv(n, h, 'conv_out');
  g.output(g.fromFloat(h), 'out_sample', 'float32', ['batch', a.outChannels, 'height', 'width']);
  n.w.assertAllUsed();
  return { graph: g, net: n };
}
