// The extra UNet input of SD inpainting models (9-channel UNets, e.g. stable-diffusion-inpainting), as diffusers'
// StableDiffusionControlNetInpaintPipeline feeds it: after scale_model_input, the UNet's sample is
// cat([latents (4), mask (1), masked-image latents (4)], dim=1); the ControlNets still see the 4 latent channels,
// and the per-step re-blending of the known region that 4-channel UNets need is not done.

/** The UNet input channels of inpainting models. */
export const INPAINT_UNET_CHANNELS = 9;

/** The constant extra channels, per sample: [mask (1), masked-image latents (4)] at latent size. */
export interface InpaintUnetExtra {
  /** [1, 5, lh, lw]: the mask then the masked image's latents. */
  data: Float32Array;
  channels: number;
}

/** Builds the extra channels from the latent mask [lh*lw] and the masked image's latents [1, 4, lh, lw]. */
export function inpaintUnetExtra(latentMask: Float32Array, maskedImageLatents: Float32Array): InpaintUnetExtra {
  const plane = latentMask.length;
  if (maskedImageLatents.length !== 4 * plane) throw new Error(`masked image latents: ${maskedImageLatents.length} values for ${plane}-pixel planes`);
  const data = new Float32Array(5 * plane);
  data.set(latentMask, 0);
  data.set(maskedImageLatents, plane);
  return { data, channels: 5 };
}

/** cat([sample [B, C, h, w], extra repeated B times], dim=1) → [B, C + extra.channels, h, w]. */
export function withInpaintChannels(sample: Float32Array, batch: number, extra: InpaintUnetExtra): Float32Array {
  const per = sample.length / batch;
  const out = new Float32Array(batch * (per + extra.data.length));
  for (let b = 0; b < batch; b++) {
    const at = b * (per + extra.data.length);
    out.set(sample.subarray(b * per, (b + 1) * per), at);
    out.set(extra.data, at + per);
  }
  return out;
}

/** diffusers' masked_image = image * (mask < 0.5) on a [-1, 1] CHW image and its [h*w] binary mask (1 = repaint). */
export function maskedImage(chw: Float32Array, mask: Float32Array): Float32Array {
  const plane = mask.length;
  return chw.map((v, i) => (mask[i % plane]! < 0.5 ? v : 0));
}
