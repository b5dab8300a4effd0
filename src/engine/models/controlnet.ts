// ControlNetModel (ControlNet 1.0 / 1.1 for SD 1.x / 2.x) as an ONNX graph, equal to diffusers' forward.
// Graph I/O: sample, timestep, encoder_hidden_states, controlnet_cond [B,3,H,W] in [0,1],
// conditioning_scales float32 [N+1] → down_block_res_sample_0..N-1, mid_block_res_sample (scaled; spatial
// means with global_pool_conditions). Guess mode is only a choice of scales, made by the caller.
import { GraphBuilder, type Value } from '../onnx/graph.ts';
import type { WeightSource } from '../weights/types.ts';
import { conv, Net, silu } from './layers.ts';
import { downBlocks, midBlock, skipShapes, timeEmbedding } from './unet-blocks.ts';
import { parseUNetConfig, type UNetConfigJson } from './unet-config.ts';
import { WeightReader } from './weight-reader.ts';
import { floatTypeOf, type Fp32Island, type Precision } from '../onnx/precision.ts';

export interface ControlNetBuildOptions {
  /** fp16: float16 weights and activations (I/O stays float32); default fp32. */
  precision?: Precision;
  /** Extra float32 islands of an fp16 graph (precision.ts FP32_ISLANDS; defaultFp32Islands chooses them per provider). */
  fp32Islands?: Fp32Island[];
}

/** Number of residual outputs (down skips + mid): 13 for SD 1.5; the length of `conditioning_scales`. */
export function controlnetResidualCount(config: UNetConfigJson): number {
  return skipShapes(parseUNetConfig(config, 'ControlNet')).length + 1;
}

/** Per-residual scales as diffusers computes them: guess mode → logspace(-1, 0, N) unless global pooling. */
export function controlnetScales(config: UNetConfigJson, conditioningScale: number, guessMode: boolean): Float32Array {
  const count = controlnetResidualCount(config);
  const out = new Float32Array(count);
  const pooled = config.global_pool_conditions === true;
  for (let i = 0; i < count; i++) {
    // torch.logspace(-1, 0, n) in float32: 10 ** linspace(-1, 0, n)
    const e = Math.fround(-1 + Math.fround(i / (count - 1)));
    out[i] = Math.fround(guessMode && !pooled ? Math.fround(10 ** e) * conditioningScale : conditioningScale);
  }
  return out;
}

export function buildControlNet(config: UNetConfigJson, src: WeightSource, opts: ControlNetBuildOptions = {}): { graph: GraphBuilder; net: Net } {
  const a = parseUNetConfig(config, 'ControlNet');
  const g = new GraphBuilder('controlnet', { floatType: floatTypeOf(opts.precision) });
  const n = new Net(g, new WeightReader(src, 'ControlNet'), false, opts.fp32Islands);
  n.upcastAttention = a.upcastAttention;
  const condChannels = config.conditioning_channels ?? 3;
  const sample = g.input('sample', 'float32', ['batch', a.inChannels, 'height', 'width']);
  const timestep = g.input('timestep', 'float32', ['batch']);
  const ehs = g.toFloat(g.input('encoder_hidden_states', 'float32', ['batch', 'sequence', a.crossAttentionDim]));
  let cond: Value = g.toFloat(g.input('controlnet_cond', 'float32', ['batch', condChannels, 'image_height', 'image_width']));
  const shapes = skipShapes(a);
  const scales = g.toFloat(g.input('conditioning_scales', 'float32', [shapes.length + 1]));
  const order = config.controlnet_conditioning_channel_order ?? 'rgb';
  if (order === 'bgr') cond = g.op('Slice', [cond, g.i64([-1]), g.i64([-(2 ** 62)]), g.i64([1]), g.i64([-1])]);
  else if (order !== 'rgb') throw new Error(`ControlNet config: controlnet_conditioning_channel_order ${order} is not supported`);

  const temb = timeEmbedding(n, a, timestep);
  let h = conv(n, g.toFloat(sample), 'conv_in');
  h = g.op('Add', [h, conditioningEmbedding(n, cond, (config.conditioning_embedding_out_channels ?? [16, 32, 96, 256]).length)]);
  const down = downBlocks(n, a, h, temb, ehs, () => undefined);
  const mid = midBlock(n, a, down.h, temb, ehs, () => undefined);
  const outs = [...down.skips.map((s, i) => conv(n, s, `controlnet_down_blocks.${i}`)), conv(n, mid, 'controlnet_mid_block')];
  const pool = config.global_pool_conditions === true;
  outs.forEach((o, i) => {
    let y = g.op('Mul', [o, g.op('Gather', [scales, g.i64([i], [])], { axis: 0 })]);
    if (pool) y = g.op('ReduceMean', [y, g.i64([2, 3])], { keepdims: 1 });
    const isMid = i === outs.length - 1;
    const s = isMid ? { channels: a.blockOut[a.blockOut.length - 1]!, factor: 2 ** (a.blockOut.length - 1) } : shapes[i]!;
    const spatial = pool ? [1, 1] : [`height/${s.factor}`, `width/${s.factor}`];
    g.output(g.fromFloat(y), isMid ? 'mid_block_res_sample' : `down_block_res_sample_${i}`, 'float32', ['batch', s.channels, ...spatial]);
  });
  n.w.assertAllUsed();
  return { graph: g, net: n };
}

/** ControlNetConditioningEmbedding: conv_in, SiLU, pairs of (3×3, 3×3 stride 2) convs with SiLU, conv_out. */
function conditioningEmbedding(n: Net, x: Value, levels: number): Value {
  const g = n.g;
  let h = silu(g, conv(n, x, 'controlnet_cond_embedding.conv_in'));
  for (let i = 0; i < 2 * (levels - 1); i++) {
    h = silu(g, conv(n, h, `controlnet_cond_embedding.blocks.${i}`, { stride: i % 2 === 1 ? 2 : 1 }));
  }
  return conv(n, h, 'controlnet_cond_embedding.conv_out');
}
