// Tile hint: the image with its fine detail removed, as the tile ControlNet (control_v11f1e_sd15_tile) was
// trained: downsampled by a factor, then resized back up to the output size (ControlNet 1.1 tile_resample).
import sharp from 'sharp';
import type { RgbImage } from '../pipeline/types.ts';
import { rgbImage } from './image.ts';

// The tile model was trained on images blurred by random downsampling; 2x keeps the layout and colors while
// dropping the fine detail the model is meant to re-create.
export const TILE_DOWNSAMPLE = 2;

export async function tile(img: RgbImage, factor = TILE_DOWNSAMPLE): Promise<RgbImage> {
  const raw = { raw: { width: img.width, height: img.height, channels: 3 as const } };
  const sw = Math.max(1, Math.round(img.width / factor)), sh = Math.max(1, Math.round(img.height / factor));
  // Down with area averaging (no aliasing), up with bicubic (smooth, as cv2.INTER_CUBIC upsampling).
  const small = await sharp(img.data, raw).resize(sw, sh, { fit: 'fill', kernel: 'mitchell' }).raw().toBuffer();
  const big = await sharp(small, { raw: { width: sw, height: sh, channels: 3 } })
    .resize(img.width, img.height, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer();
  return rgbImage(img.width, img.height, new Uint8Array(big.buffer, big.byteOffset, big.byteLength));
}
