// The half of the UNet that ControlNet copies: time embedding, down blocks and mid block (diffusers
// get_down_block / UNetMidBlock2DCrossAttn), built the same way for both networks.
import type { Value } from '../onnx/graph.ts';
import { linear, Net, resnetBlock, silu, timestepEmbedding, transformer2d, downsample, type TokenMergeFactory } from './layers.ts';
import type { UNetArch } from './unet-config.ts';

/** Picks the token-merge hook for a block at a given downsample factor (1, 2, 4, ...), or none. */
export type TomeAt = (downsample: number) => TokenMergeFactory | undefined;

/** time_proj (float32) + time_embedding (linear_1, SiLU, linear_2) in the network's type: timesteps [B] → [B, 4·C0]. */
export function timeEmbedding(n: Net, a: UNetArch, timestep: Value): Value {
  const g = n.g;
  const tEmb = g.toFloat(timestepEmbedding(g, timestep, a.blockOut[0]!, a.flipSinToCos, a.freqShift));
  return linear(n, silu(g, linear(n, tEmb, 'time_embedding.linear_1', false)), 'time_embedding.linear_2', false);
}

/** Runs the down blocks from conv_in's output; returns the last hidden state and every skip, in order. */
export function downBlocks(n: Net, a: UNetArch, h: Value, temb: Value, ehs: Value, tomeAt: TomeAt): { h: Value; skips: Value[] } {
  const skips: Value[] = [h];
  const res = { groups: a.groups, eps: a.eps };
  a.down.forEach((blk, i) => {
    const p = `down_blocks.${i}`;
    for (let j = 0; j < a.layers[i]!; j++) {
      h = n.withLora(() => resnetBlock(n, h, temb, `${p}.resnets.${j}`, { ...res, channels: a.blockOut[i] }));
      if (blk.type === 'CrossAttnDownBlock2D') {
        h = transformer2d(n, h, ehs, `${p}.attentions.${j}`, {
          heads: blk.heads, groups: a.groups, layers: blk.transformerLayers, linearProjection: a.linearProjection, tome: tomeAt(2 ** i),
        });
      }
      skips.push(h);
    }
    if (i < a.down.length - 1) {
      h = downsample(n, h, `${p}.downsamplers.0`, 1);
      skips.push(h);
    }
  });
  return { h, skips };
}

export function midBlock(n: Net, a: UNetArch, h: Value, temb: Value, ehs: Value, tomeAt: TomeAt): Value {
  if (!a.mid) return h;
  const res = { groups: a.groups, eps: a.eps, channels: a.blockOut[a.blockOut.length - 1] };
  h = n.withLora(() => resnetBlock(n, h, temb, 'mid_block.resnets.0', res));
  h = transformer2d(n, h, ehs, 'mid_block.attentions.0', {
    heads: a.mid.heads, groups: a.groups, layers: a.mid.transformerLayers, linearProjection: a.linearProjection,
    tome: tomeAt(2 ** (a.down.length - 1)),
  });
  return n.withLora(() => resnetBlock(n, h, temb, 'mid_block.resnets.1', res));
}

/** Channels of each skip tensor and its spatial downsample factor (for graph I/O shapes). */
export function skipShapes(a: UNetArch): { channels: number; factor: number }[] {
  const out = [{ channels: a.blockOut[0]!, factor: 1 }];
  a.down.forEach((_, i) => {
    for (let j = 0; j < a.layers[i]!; j++) out.push({ channels: a.blockOut[i]!, factor: 2 ** i });
    if (i < a.down.length - 1) out.push({ channels: a.blockOut[i]!, factor: 2 ** (i + 1) });
  });
  return out;
}
