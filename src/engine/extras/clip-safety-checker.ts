// The diffusers safety checker of a base model folder (safety_checker/ + feature_extractor/, the diffusers layout
// of SD 1.5), run on the decoded images. Preprocessing follows CLIPImageProcessor: resize the shortest side to
// `size.shortest_edge` (torchvision's antialiased bicubic on uint8, as transformers 5 does it, reproduced exactly by
// bicubic-antialias.ts), centre-crop to `crop_size`, scale by 1/255, normalise with image_mean/std.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resizeBicubicAntialias } from './bicubic-antialias.ts';
import { buildSafetyChecker, safetyCheckerImageSize, safetyFlags, type SafetyCheckerConfigJson } from '../models/safety-checker.ts';
import { compiledModel, createSession, ort, type RuntimeOptions } from '../onnx/session.ts';
import { openComponentFolder } from '../weights/open.ts';
import type { RgbImage } from '../pipeline/types.ts';

/** CLIPImageProcessor's settings (preprocessor_config.json): shortest edge, crop size, mean and std per channel. */
export interface ClipPreprocessor {
  size: number;
  crop: number;
  mean: number[];
  std: number[];
}

/**
 * transformers' CLIPImageProcessor on one uint8 RGB image: the shortest side resized to `size` (antialiased bicubic)
 * (the long side int(size × long / short), as get_resize_output_image_size truncates), the centre `crop`² taken
 * (top-left at ⌊(H − crop) / 2⌋, ⌊(W − crop) / 2⌋), scaled by 1/255 and normalised. Returns [3, crop, crop] float32.
 */
export function clipPixelValues(img: RgbImage, pre: ClipPreprocessor): Float32Array {
  const { size, crop, mean, std } = pre;
  const short = Math.min(img.width, img.height), long = Math.max(img.width, img.height);
  const newLong = Math.trunc((size * long) / short);
  const [w, h] = img.width <= img.height ? [size, newLong] : [newLong, size];
  const resized = resizeBicubicAntialias(img, w, h);
  if (w < crop || h < crop) throw new Error(`safety checker: shortest_edge ${size} is smaller than crop_size ${crop}`);
  const top = Math.floor((h - crop) / 2), left = Math.floor((w - crop) / 2);
  const out = new Float32Array(3 * crop * crop);
  for (let y = 0; y < crop; y++) {
    for (let x = 0; x < crop; x++) {
      const p = ((y + top) * w + x + left) * 3, i = y * crop + x;
      for (let c = 0; c < 3; c++) out[c * crop * crop + i] = (resized.data[p + c]! / 255 - mean[c]!) / std[c]!;
    }
  }
  return out;
}

/** Where a checker's files are: its folder (config.json + weights) and its preprocessor_config.json. */
export interface CheckerFiles {
  dir: string;
  preprocessor: string;
}

/**
 * The checker files of a folder: a diffusers base model (safety_checker/ and feature_extractor/), or a standalone
 * checker as the hub's CompVis/stable-diffusion-safety-checker (config.json, weights and preprocessor_config.json
 * side by side). Undefined when the folder has neither.
 */
export function checkerFiles(dir: string): CheckerFiles | undefined {
  if (existsSync(join(dir, 'safety_checker', 'config.json')) && existsSync(join(dir, 'feature_extractor', 'preprocessor_config.json'))) {
    return { dir: join(dir, 'safety_checker'), preprocessor: join(dir, 'feature_extractor', 'preprocessor_config.json') };
  }
  if (existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'preprocessor_config.json'))) return { dir, preprocessor: join(dir, 'preprocessor_config.json') };
  return undefined;
}

export class ClipSafetyChecker {
  private constructor(readonly model: string, private readonly session: ort.InferenceSession, private readonly pre: ClipPreprocessor,
    private readonly specialThr: Float32Array, private readonly conceptThr: Float32Array) {}

  /** Builds (once, into the cache) the checker in `files` (checkerFiles); throws for files it cannot use. */
  static async load(files: CheckerFiles, model: string, rt: RuntimeOptions): Promise<ClipSafetyChecker> {
    const config = JSON.parse(readFileSync(join(files.dir, 'config.json'), 'utf8')) as SafetyCheckerConfigJson;
    const p = JSON.parse(readFileSync(files.preprocessor, 'utf8')) as Record<string, any>;
    const S = safetyCheckerImageSize(config);
    const size = typeof p.size === 'number' ? p.size : p.size?.shortest_edge ?? S;
    const crop = typeof p.crop_size === 'number' ? p.crop_size : p.crop_size?.height ?? S;
    if (crop !== S) throw new Error(`feature_extractor crop_size ${crop} does not match the checker's image_size ${S}`);
    const src = await openComponentFolder(files.dir);
    const compiled = await compiledModel(rt.cacheDir, { kind: 'safety_checker-clip', config, weights: src.fingerprint() }, () => buildSafetyChecker(config, src));
    return new ClipSafetyChecker(model, await createSession(compiled.path, rt), {
      size, crop, mean: p.image_mean ?? [0.48145466, 0.4578275, 0.40821073], std: p.image_std ?? [0.26862954, 0.26130258, 0.27577711],
    }, await src.readF32('special_care_embeds_weights'), await src.readF32('concept_embeds_weights'));
  }

  /** CLIPImageProcessor's pixel_values of one image: [3, crop, crop] (clipPixelValues). */
  private pixels(img: RgbImage): Float32Array {
    return clipPixelValues(img, this.pre);
  }

  /** Frees its session (the engine's memory budget evicts it, SessionCache.useResource). */
  release(): Promise<void> {
    return this.session.release();
  }

  /** diffusers' has_nsfw_concepts for each image. */
  async check(images: RgbImage[]): Promise<boolean[]> {
    const c = this.pre.crop, per = 3 * c * c;
    const x = new Float32Array(images.length * per);
    for (const [i, im] of images.entries()) x.set(this.pixels(im), i * per);
    const out = await this.session.run({ pixel_values: new ort.Tensor('float32', x, [images.length, 3, c, c]) });
    return safetyFlags(out.special_cos!.data as Float32Array, out.concept_cos!.data as Float32Array, this.specialThr, this.conceptThr);
  }
}
