// The upscale stage: a super-resolution network run over the image in tiles with overlapping context, so that the
// memory a 1024×1024 → 2048×2048 upscale needs is bounded by the tile size, not the image. Each tile is run with
// `margin` extra input pixels on every side (clipped at the image border) and only its centre is kept: with a
// margin at least the network's receptive radius, the tiled result equals the whole-image run.
import { EngineError } from '../errors.ts';
import { compiledModel, createSession, ort, type RuntimeOptions } from '../onnx/session.ts';
import sharp from 'sharp';
import { buildKerasGraph } from '../models/keras.ts';
import { buildRrdbNet, rrdbNetConfig } from '../models/rrdbnet.ts';
import { openWeightsFile } from '../weights/open.ts';
import { readTfjsLayersModel } from '../weights/tfjs.ts';
import type { RgbImage } from '../pipeline/types.ts';
import { ESRGAN_SLIM, packageVersion } from './embedded.ts';

export interface UpscaleNet {
  /** The model's name as meta reports it. */
  model: string;
  session: ort.InferenceSession;
  /** Output size / input size. */
  scale: number;
  /** The network's pixel range: 255 (0–255 in and out) or 1 (0–1). */
  range: 255 | 1;
  /** Input pixels of context kept around each tile: at least the receptive radius in input pixels. */
  margin: number;
  /** Frees its session (the engine's memory budget evicts it, SessionCache.useResource). */
  release(): Promise<void>;
  /** Tile side in input pixels (before the margin). */
  tile: number;
}

/**
 * Upscales one image by net.scale, tile by tile (NCHW float input per tile, outputs clamped to the range and
 * rounded to uint8). Returns an image of exactly scale × width by scale × height.
 */
export async function upscaleTiled(net: UpscaleNet, img: RgbImage, signal?: AbortSignal): Promise<RgbImage> {
  const { width: W, height: H, data } = img;
  const s = net.scale;
  const OW = W * s, OH = H * s;
  const out = new Uint8Array(OW * OH * 3);
  const k = net.range / 255;
  for (let ty = 0; ty < H; ty += net.tile) {
    for (let tx = 0; tx < W; tx += net.tile) {
      if (signal?.aborted) throw new EngineError('cancelled', 'cancelled');
      const x1 = Math.min(W, tx + net.tile), y1 = Math.min(H, ty + net.tile);
      const cx0 = Math.max(0, tx - net.margin), cy0 = Math.max(0, ty - net.margin);
      const cx1 = Math.min(W, x1 + net.margin), cy1 = Math.min(H, y1 + net.margin);
      const cw = cx1 - cx0, ch = cy1 - cy0, plane = cw * ch;
      const input = new Float32Array(3 * plane);
      for (let y = 0; y < ch; y++) {
        for (let x = 0; x < cw; x++) {
          const src = ((cy0 + y) * W + cx0 + x) * 3;
          for (let c = 0; c < 3; c++) input[c * plane + y * cw + x] = data[src + c]! * k;
        }
      }
      const res = await net.session.run({ [net.session.inputNames[0]!]: new ort.Tensor('float32', input, [1, 3, ch, cw]) });
      const o = res[net.session.outputNames[0]!]!;
      const [, , rh, rw] = o.dims as [number, number, number, number];
      if (rh !== ch * s || rw !== cw * s) throw new Error(`upscaler ${net.model} gave ${rw}×${rh} for ${cw}×${ch} (expected ×${s})`);
      const od = o.data as Float32Array, oplane = rh * rw;
      for (let y = (ty - cy0) * s; y < (y1 - cy0) * s; y++) {
        for (let x = (tx - cx0) * s; x < (x1 - cx0) * s; x++) {
          const dst = ((cy0 * s + y) * OW + cx0 * s + x) * 3;
          for (let c = 0; c < 3; c++) out[dst + c] = Math.round(Math.min(255, Math.max(0, od[c * oplane + y * rw + x]! / k)));
        }
      }
    }
  }
  return { width: OW, height: OH, data: out };
}

/**
 * The embedded default: @upscalerjs/esrgan-slim's ×scale model (RDN), its TF.js files read by our reader and built
 * by our builder (compiled once into the cache). Its receptive radius is 10 input pixels (9 conv layers with
 * 3×3 or 5×5 kernels before the upsampling, one 3×3 after it); the margin is 12.
 */
export async function esrganSlim(scale: 2 | 3 | 4, rt: RuntimeOptions): Promise<UpscaleNet> {
  const version = packageVersion(ESRGAN_SLIM.package);
  const compiled = await compiledModel(rt.cacheDir, { kind: 'upscaler', package: ESRGAN_SLIM.package, version, scale }, async () =>
    buildKerasGraph(await readTfjsLayersModel(ESRGAN_SLIM.modelJson(scale)), { name: `esrgan-slim-x${scale}` }));
  const session = await createSession(compiled.path, rt);
  return {
    model: `esrgan-slim-x${scale} (${ESRGAN_SLIM.package}@${version})`, session, release: () => session.release(),
    scale, range: 255, margin: 12, tile: ESRGAN_SLIM.patchSize,
  };
}

/**
 * A user's RRDBNet (Real-ESRGAN x2plus / x4plus .pth or .safetensors) built by our builder. Its receptive field
 * spans hundreds of pixels, so tiles cannot be exact: as Real-ESRGAN's own tiling (tile_pad 10), each tile sees
 * `margin` (16) input pixels of context, which leaves seams far below one level in practice.
 */
export async function rrdbNet(path: string, model: string, rt: RuntimeOptions): Promise<UpscaleNet> {
  const src = await openWeightsFile(path);
  const config = rrdbNetConfig(src);
  if (config.scale === 1 || config.numInCh !== 3 || config.numOutCh !== 3) throw new Error(`an RRDBNet of scale ${config.scale} with ${config.numInCh}→${config.numOutCh} channels is not an RGB ×2/×4 upscaler`);
  const compiled = await compiledModel(rt.cacheDir, { kind: 'upscaler-rrdbnet', config, weights: src.fingerprint() }, () => buildRrdbNet(src, config, model));
  const session = await createSession(compiled.path, rt);
  return { model, session, release: () => session.release(), scale: config.scale, range: 1, margin: 16, tile: 128 };
}

/** Resizes with Lanczos (sharp) to exactly width × height: ×4 models asked for ×2 or ×3. */
export async function resizeTo(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  const data = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).resize(width, height, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
  return { width, height, data: new Uint8Array(data) };
}

/** The installed Real-ESRGAN ids the upscale stage looks for (models/upscaler/<id>.pth|.safetensors), best first. */
export const REAL_ESRGAN_IDS = { 2: ['RealESRGAN_x2plus', 'RealESRGAN_x4plus'], 3: ['RealESRGAN_x4plus'] } as const;
