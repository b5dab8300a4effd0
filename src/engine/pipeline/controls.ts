// The ControlNets of a request: each one's hint tensor and per-residual scales, and the summed residuals of all
// of them for one step (diffusers' MultiControlNetModel), laid out as the UNet's residual inputs. The residuals stay
// on the device (onnx/device.ts): ControlNet outputs feed the sums and the UNet without visiting the host.
import type { DeviceIO } from '../onnx/device.ts';
import { ort } from '../onnx/session.ts';
import { skipShapes } from '../models/unet-blocks.ts';
import type { UNetArch } from '../models/unet-config.ts';
import type { LoadedNet } from './networks.ts';

export interface ControlRun {
  net: LoadedNet;
  config: Record<string, any>;
  /** [batch, 3, H, W]: the hint repeated for the batch the ControlNet sees (a host tensor, or on the device). */
  cond: ort.Tensor;
  /** conditioning_scales [13]: scale, or scale × logspace(-1, 0, 13) in guess mode. */
  scales: ort.Tensor;
  /** The hint for a smaller batch (DDIM inversion runs without CFG), uploaded on first use. */
  condByBatch?: Map<number, ort.Tensor>;
  /** The hint as host data, for condByBatch. */
  condHost?: Float32Array;
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

/** The first `batch` copies of the repeated hint (a call without CFG), uploaded once per generation. */
async function condFor(ctl: ControlRun, batch: number, io: DeviceIO): Promise<ort.Tensor> {
  if (ctl.cond.dims[0] === batch) return ctl.cond;
  ctl.condByBatch ??= new Map();
  let t = ctl.condByBatch.get(batch);
  if (!t) {
    const host = ctl.condHost!;
    t = await io.toDevice(tensor(host.subarray(0, (host.length / ctl.cond.dims[0]!) * batch), [batch, ...ctl.cond.dims.slice(1)]));
    ctl.condByBatch.set(batch, t);
  }
  return t;
}

/**
 * Runs every ControlNet on this step's input `sample` [batch, 4, h, w] and sums their residuals on the device. With
 * `zeroUncond` (guess mode with CFG) the ControlNets saw only the conditional half, and the unconditional half of each
 * residual is zeros, as diffusers does. Returns the UNet's residual feeds; the caller frees them with
 * io.disposeAll once the UNet has run.
 */
export async function controlResiduals(
  controls: ControlRun[], sample: ort.Tensor, t: number, ehs: ort.Tensor, zeroUncond: boolean, io: DeviceIO,
): Promise<Record<string, ort.Tensor>> {
  const batch = ehs.dims[0]!;
  let sums: ort.Tensor[] | undefined;
  let names: string[] = [];
  for (const ctl of controls) {
    const out = await io.run(ctl.net.session, {
      sample,
      timestep: tensor(new Float32Array(batch).fill(t), [batch]),
      encoder_hidden_states: ehs,
      controlnet_cond: await condFor(ctl, batch, io),
      conditioning_scales: ctl.scales,
    }, true);
    names = residualNames(Object.keys(out).length);
    const parts = names.map((n) => out[n]!);
    if (!sums) {
      sums = parts;
    } else {
      const next = await io.sum(sums, parts);
      io.disposeAll([...sums, ...parts]);
      sums = next;
    }
  }
  if (!sums) return {};
  if (zeroUncond) {
    const z = await io.zeroUncond(sums);
    io.disposeAll(sums);
    sums = z;
  }
  const feeds: Record<string, ort.Tensor> = {};
  names.forEach((n, k) => {
    feeds[n === 'mid_block_res_sample' ? 'mid_block_additional_residual' : n.replace('down_block_res_sample_', 'down_block_additional_residual_')] = sums![k]!;
  });
  return feeds;
}
