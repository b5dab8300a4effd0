// The ControlNets of a request: each one's hint tensor and per-residual scales, and the summed residuals of all
// of them for one step (diffusers' MultiControlNetModel), laid out as the UNet's residual inputs.
import { ort } from '../onnx/session.ts';
import type { LoadedNet } from './networks.ts';
import { addInto, cat } from './tensor-math.ts';
import { skipShapes } from '../models/unet-blocks.ts';
import type { UNetArch } from '../models/unet-config.ts';

export interface ControlRun {
  net: LoadedNet;
  config: Record<string, any>;
  /** [batch, 3, H, W]: the hint repeated for the batch the ControlNet sees. */
  cond: ort.Tensor;
  /** conditioning_scales [13]: scale, or scale × logspace(-1, 0, 13) in guess mode. */
  scales: ort.Tensor;
}

const tensor = (data: Float32Array, dims: number[]): ort.Tensor => new ort.Tensor('float32', data, dims);

function residualNames(count: number): string[] {
  return [...Array.from({ length: count - 1 }, (_, i) => `down_block_res_sample_${i}`), 'mid_block_res_sample'];
}

/**
 * The UNet's residual inputs when no ControlNet runs (text2img / img2img / inpaint without one): zeros, so the UNet
 * computes exactly what diffusers' StableDiffusionPipeline does (adding 0 changes no value). Shapes are the UNet's
 * skip connections (skipShapes) at latent size [lh, lw]; each stride-2 downsampling gives ceil(n / 2).
 */
export function zeroResiduals(arch: UNetArch, batch: number, [lh, lw]: [number, number]): Record<string, ort.Tensor> {
  const at = (n: number, factor: number) => {
    for (let f = 1; f < factor; f *= 2) n = Math.ceil(n / 2);
    return n;
  };
  const feeds: Record<string, ort.Tensor> = {};
  skipShapes(arch).forEach((s, i) => {
    const d = [batch, s.channels, at(lh, s.factor), at(lw, s.factor)];
    feeds[`down_block_additional_residual_${i}`] = tensor(new Float32Array(d[0]! * d[1]! * d[2]! * d[3]!), d);
  });
  const last = arch.blockOut.length - 1;
  const d = [batch, arch.blockOut[last]!, at(lh, 2 ** last), at(lw, 2 ** last)];
  feeds.mid_block_additional_residual = tensor(new Float32Array(d[0]! * d[1]! * d[2]! * d[3]!), d);
  return feeds;
}

/**
 * Runs every ControlNet on this step's input and sums their residuals. With `zeroUncond` (guess mode with CFG) the
 * ControlNets saw only the conditional half, and the unconditional half of each residual is zeros, as diffusers does.
 */
export async function controlResiduals(
  controls: ControlRun[], sample: Float32Array, latentHW: [number, number], t: number, ehs: ort.Tensor, zeroUncond: boolean, arch?: UNetArch,
): Promise<Record<string, ort.Tensor>> {
  const batch = ehs.dims[0]!;
  if (controls.length === 0) {
    if (!arch) throw new Error('controlResiduals: no ControlNet and no UNet architecture for the zero residuals');
    return zeroResiduals(arch, zeroUncond ? 2 * batch : batch, latentHW);
  }
  let sums: Float32Array[] | undefined;
  let dims: (readonly number[])[] = [];
  for (const ctl of controls) {
    const out = await ctl.net.session.run({
      sample: tensor(sample, [batch, 4, ...latentHW]),
      timestep: tensor(new Float32Array(batch).fill(t), [batch]),
      encoder_hidden_states: ehs,
      // the hint is one image repeated: a call without CFG (DDIM inversion) takes the first `batch` copies
      controlnet_cond: ctl.cond.dims[0] === batch ? ctl.cond
        : tensor((ctl.cond.data as Float32Array).subarray(0, (ctl.cond.data.length / ctl.cond.dims[0]!) * batch), [batch, ...ctl.cond.dims.slice(1)]),
      conditioning_scales: ctl.scales,
    });
    const names = residualNames(Object.keys(out).length);
    const parts = names.map((n) => out[n]!.data as Float32Array);
    dims = names.map((n) => out[n]!.dims);
    if (!sums) sums = parts.map((p) => Float32Array.from(p));
    else sums.forEach((s, k) => addInto(s, parts[k]!));
  }
  const feeds: Record<string, ort.Tensor> = {};
  residualNames(sums!.length).forEach((n, k) => {
    const d = [...dims[k]!];
    const data = zeroUncond ? cat(new Float32Array(sums![k]!.length), sums![k]!) : sums![k]!;
    if (zeroUncond) d[0] = d[0]! * 2;
    feeds[n === 'mid_block_res_sample' ? 'mid_block_additional_residual' : n.replace('down_block_res_sample_', 'down_block_additional_residual_')] = tensor(data, d);
  });
  return feeds;
}
