// Latents → pixels with the VAE decoder: whole, as diffusers decodes by default, or in diffusers' tiles for large
// images, which bounds the decoder's memory.
import { needsTiling, tiledDecode } from '../models/vae-tiling.ts';
import { vaeTileSizes, type VaeConfigJson } from '../models/vae.ts';
import { ort } from '../onnx/session.ts';
import type { LoadedNet } from './networks.ts';

/** The default of the VAE_TILE_ABOVE_PIXELS setting: images above 768×768 pixels decode in tiles. */
export const DEFAULT_TILE_ABOVE_PIXELS = 768 * 768;

/**
 * `scaled` are latents already divided by the VAE's scaling factor; returns [B, 3, H, W] (about [-1, 1]).
 * Images of more than `tileAbovePixels` pixels decode in diffusers' tiles when the latents exceed one tile.
 */
export async function decodeLatents(
  decoder: LoadedNet, scaled: Float32Array, dims: [number, number, number, number], vaeScaleFactor: number, config: VaeConfigJson,
  tileAbovePixels = DEFAULT_TILE_ABOVE_PIXELS,
): Promise<Float32Array> {
  const decode = async (lat: Float32Array, d: readonly number[]): Promise<Float32Array> =>
    (await decoder.session.run({ latent: new ort.Tensor('float32', lat, d) })).sample!.data as Float32Array;
  const tiles = vaeTileSizes(config);
  const pixels = dims[2] * vaeScaleFactor * dims[3] * vaeScaleFactor;
  if (pixels <= tileAbovePixels || !needsTiling(dims, tiles)) return decode(scaled, dims);
  const out = await tiledDecode({ data: scaled, dims }, async (tl) => ({
    data: await decode(tl.data, tl.dims), dims: [tl.dims[0], 3, tl.dims[2] * vaeScaleFactor, tl.dims[3] * vaeScaleFactor],
  }), tiles);
  return out.data;
}
