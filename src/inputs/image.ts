// Request images: URL (through the SSRF-safe client), data URL or bare base64 → decoded RGB at the output size.
// Decompression bombs are refused from the header (dimensions) before any full decode, and sharp's own
// pixel limit backs that up. Transparency (alpha, palette transparency, grey + alpha, in any format) is
// resolved for the image's role before resizing (alpha.ts): over white for hints and init images, the alpha
// as the mask for masks.
import sharp, { type Metadata } from 'sharp';
import type { RgbImage } from '../engine/pipeline/types.ts';
import { FetchError, safeFetch, type SafeFetchOptions } from './safe-fetch.ts';
import { resolveAlpha, roleOfField, type ImageRole } from './alpha.ts';

export class InputError extends Error {
  constructor(readonly statusCode: 400 | 413, message: string) {
    super(message);
  }
}

export interface ImageLimits {
  maxBytes: number;
  maxPixels: number;
  fetch?: Omit<SafeFetchOptions, 'maxBytes'>;
}

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** The raw bytes of an image field. `field` names the request field in error messages. */
export async function loadImageBytes(field: string, src: string, limits: ImageLimits): Promise<Buffer> {
  const s = src.trim();
  if (/^https?:\/\//i.test(s)) {
    try {
      const res = await safeFetch(s, { ...limits.fetch, maxBytes: limits.maxBytes });
      if (res.status !== 200) throw new InputError(400, `${field} could not be fetched: HTTP ${res.status}`);
      return res.body;
    } catch (e) {
      if (e instanceof InputError) throw e;
      if (e instanceof FetchError) {
        throw new InputError(e.kind === 'too_large' ? 413 : 400, `${field} could not be fetched: ${e.message}`);
      }
      throw e;
    }
  }
  let b64 = s;
  const m = /^data:([^,;]*)((?:;[^,;]*)*),/i.exec(s);
  if (m) {
    if (!/;base64/i.test(m[2] ?? '')) throw new InputError(400, `${field} data URL must be base64-encoded`);
    b64 = s.slice(m[0].length);
  } else if (/^[a-z][a-z0-9+.-]*:/i.test(s)) {
    throw new InputError(400, `${field} must be an http(s) URL, a data URL or base64 (scheme ${s.split(':')[0]} is not allowed)`);
  }
  b64 = b64.replace(/\s+/g, '');
  // base64 of maxBytes is 4/3 as long: refuse before decoding.
  if (b64.length > Math.ceil(limits.maxBytes / 3) * 4 + 4) throw new InputError(413, `${field} is larger than ${limits.maxBytes} bytes`);
  if (!BASE64.test(b64)) throw new InputError(400, `${field} must be an http(s) URL, a data URL or base64`);
  const buf = Buffer.from(b64, b64.includes('-') || b64.includes('_') ? 'base64url' : 'base64');
  if (buf.length === 0) throw new InputError(400, `${field} is empty`);
  return buf;
}

/**
 * Decodes to RGB, resized to width x height (every input is resized to the output size). `role` (by default
 * the field's: mask_image → mask, init_image → init, else hint) decides what transparency becomes.
 */
export async function decodeRgb(field: string, bytes: Buffer, width: number, height: number, maxPixels: number,
  role: ImageRole = roleOfField(field)): Promise<RgbImage> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata(); // header only: no pixel decode
  } catch {
    throw new InputError(400, `${field} is not a decodable image (png, jpeg, webp, gif, tiff, avif)`);
  }
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (w <= 0 || h <= 0) throw new InputError(400, `${field} has no dimensions`);
  if (w * h > maxPixels) throw new InputError(413, `${field} is ${w}x${h} pixels, more than the limit of ${maxPixels}`);
  try {
    const decoded = sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
      .rotate() // honour EXIF orientation
      .toColourspace('srgb');
    if (meta.hasAlpha) {
      // Resolve transparency at the image's own size, then resize the RGB result.
      const rgba = await decoded.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      if (rgba.info.channels !== 4) throw new Error(`decoded ${rgba.info.channels} channels`);
      const rgb = resolveAlpha(new Uint8Array(rgba.data.buffer, rgba.data.byteOffset, rgba.data.length), role);
      const { width: w0, height: h0 } = rgba.info;
      if (w0 === width && h0 === height) return { width, height, data: rgb };
      const resized = await sharp(rgb, { raw: { width: w0, height: h0, channels: 3 } })
        .resize(width, height, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
      return { width, height, data: new Uint8Array(resized.buffer, resized.byteOffset, resized.length) };
    }
    const { data, info } = await decoded
      .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
      .raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded ${info.channels} channels`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (e) {
    throw new InputError(400, `${field} could not be decoded: ${(e as Error).message}`);
  }
}

/** Fetches or decodes a request image field to RGB at width x height; `role` as in decodeRgb. */
export async function loadImage(field: string, src: string, width: number, height: number, limits: ImageLimits,
  role: ImageRole = roleOfField(field)): Promise<RgbImage> {
  return decodeRgb(field, await loadImageBytes(field, src, limits), width, height, limits.maxPixels, role);
}
