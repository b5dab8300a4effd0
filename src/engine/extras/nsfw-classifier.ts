// The embedded safety checker: nsfwjs' MobileNetV2 NSFW classifier (five classes), its TF.js files read by our
// reader and built by our builder. Preprocessing as nsfwjs' classify(): bilinear resize to 224×224 with
// align_corners=true (tf.image.resizeBilinear(img, [224, 224], true)), then pixels / 255.
import { compiledModel, createSession, ort, type RuntimeOptions } from '../onnx/session.ts';
import { buildKerasGraph } from '../models/keras.ts';
import { readTfjsBundledModel } from '../weights/tfjs.ts';
import type { RgbImage } from '../pipeline/types.ts';
import { NSFWJS_MOBILENET_V2, packageVersion } from './embedded.ts';

export type NsfwClass = (typeof NSFWJS_MOBILENET_V2.classes)[number];

/**
 * The rule that flags an image: P(Porn) + P(Hentai) ≥ 0.5, or P(Sexy) ≥ 0.8. nsfwjs itself returns only the
 * probabilities; this threshold is ours (the classes that diffusers' checker targets are explicit content).
 */
export function isFlagged(p: Record<NsfwClass, number>): boolean {
  return p.Porn + p.Hentai >= 0.5 || p.Sexy >= 0.8;
}

/** tf.image.resizeBilinear(…, alignCorners=true) of an HWC uint8 image to size×size, /255, as NCHW float32. */
export function nsfwInput(img: RgbImage, size = NSFWJS_MOBILENET_V2.size): Float32Array {
  const { width: W, height: H, data } = img;
  const out = new Float32Array(3 * size * size);
  const sy = size > 1 ? (H - 1) / (size - 1) : 0, sx = size > 1 ? (W - 1) / (size - 1) : 0;
  const plane = size * size;
  for (let y = 0; y < size; y++) {
    const fy = y * sy, y0 = Math.floor(fy), y1 = Math.min(H - 1, y0 + 1), dy = fy - y0;
    for (let x = 0; x < size; x++) {
      const fx = x * sx, x0 = Math.floor(fx), x1 = Math.min(W - 1, x0 + 1), dx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const a = data[(y0 * W + x0) * 3 + c]!, b = data[(y0 * W + x1) * 3 + c]!;
        const d = data[(y1 * W + x0) * 3 + c]!, e = data[(y1 * W + x1) * 3 + c]!;
        const top = a + (b - a) * dx, bottom = d + (e - d) * dx;
        out[c * plane + y * size + x] = (top + (bottom - top) * dy) / 255;
      }
    }
  }
  return out;
}

export class NsfwClassifier {
  private constructor(readonly model: string, private readonly session: ort.InferenceSession) {}

  /** Builds (once, into the cache) and loads the embedded model. */
  static async load(rt: RuntimeOptions): Promise<NsfwClassifier> {
    const version = packageVersion(NSFWJS_MOBILENET_V2.package);
    const compiled = await compiledModel(rt.cacheDir, { kind: 'safety_checker', package: 'nsfwjs', version, variant: 'mobilenet_v2' }, async () => {
      const f = NSFWJS_MOBILENET_V2.files();
      return buildKerasGraph(await readTfjsBundledModel(f.model, f.shards), { name: 'nsfwjs-mobilenet_v2' });
    });
    return new NsfwClassifier(`nsfwjs-mobilenet_v2 (nsfwjs@${version})`, await createSession(compiled.path, rt));
  }

  /** The five class probabilities of each image. */
  async classify(images: RgbImage[]): Promise<Record<NsfwClass, number>[]> {
    const n = images.length, S = NSFWJS_MOBILENET_V2.size, per = 3 * S * S;
    const input = new Float32Array(n * per);
    images.forEach((im, i) => input.set(nsfwInput(im), i * per));
    const out = await this.session.run({ input: new ort.Tensor('float32', input, [n, 3, S, S]) });
    const p = out.output!.data as Float32Array;
    const k = NSFWJS_MOBILENET_V2.classes.length;
    return images.map((_, i) => Object.fromEntries(NSFWJS_MOBILENET_V2.classes.map((c, j) => [c, p[i * k + j]!])) as Record<NsfwClass, number>);
  }

  /** Frees its session (the engine's memory budget evicts it, SessionCache.useResource). */
  release(): Promise<void> {
    return this.session.release();
  }
}
