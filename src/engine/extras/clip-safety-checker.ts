// The diffusers safety checker of a base model folder (safety_checker/ + feature_extractor/, the diffusers layout
// of SD 1.5), run on the decoded images. Preprocessing follows CLIPImageProcessor: resize the shortest side to
// `size.shortest_edge` (bicubic), centre-crop to `crop_size`, scale by 1/255, normalise with image_mean/std.
// The resize is sharp's cubic filter, not PIL's bicubic, so pixel values differ slightly from transformers'.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { buildSafetyChecker, safetyCheckerImageSize, safetyFlags, type SafetyCheckerConfigJson } from '../models/safety-checker.ts';
import { compiledModel, createSession, ort, type RuntimeOptions } from '../onnx/session.ts';
import { openComponentFolder } from '../weights/open.ts';
import type { RgbImage } from '../pipeline/types.ts';

interface Preprocessor {
  size: number;
  crop: number;
  mean: number[];
  std: number[];
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
  private constructor(readonly model: string, private readonly session: ort.InferenceSession, private readonly pre: Preprocessor,
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

  /** CLIPImageProcessor's pixel_values of one image: [3, crop, crop]. */
  private async pixels(img: RgbImage): Promise<Float32Array> {
    const { size, crop, mean, std } = this.pre;
    const k = size / Math.min(img.width, img.height);
    const w = Math.max(crop, Math.round(img.width * k)), h = Math.max(crop, Math.round(img.height * k));
    const resized = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
      .resize(w, h, { fit: 'fill', kernel: 'cubic' })
      .extract({ left: Math.floor((w - crop) / 2), top: Math.floor((h - crop) / 2), width: crop, height: crop }).raw().toBuffer();
    const out = new Float32Array(3 * crop * crop);
    for (let i = 0; i < crop * crop; i++) for (let c = 0; c < 3; c++) out[c * crop * crop + i] = (resized[i * 3 + c]! / 255 - mean[c]!) / std[c]!;
    return out;
  }

  /** diffusers' has_nsfw_concepts for each image. */
  async check(images: RgbImage[]): Promise<boolean[]> {
    const c = this.pre.crop, per = 3 * c * c;
    const x = new Float32Array(images.length * per);
    for (const [i, im] of images.entries()) x.set(await this.pixels(im), i * per);
    const out = await this.session.run({ pixel_values: new ort.Tensor('float32', x, [images.length, 3, c, c]) });
    return safetyFlags(out.special_cos!.data as Float32Array, out.concept_cos!.data as Float32Array, this.specialThr, this.conceptThr);
  }
}
