// auto_hint: turns the input image into the hint each ControlNet type was trained on. The image is first
// resized to the output size (the annotator's detect resolution), and the hint comes back at that size.
import type { ControlNetType, RgbImage } from '../pipeline/types.ts';
import { canny } from './canny.ts';
import { drawFaces } from './face-draw.ts';
import { resizeRgb } from './image.ts';
import { inpaintPreview } from './inpaint.ts';
import { BUNDLED, hasAnnotatorFiles, installedCheckpoint, requireAnnotatorFiles } from './models.ts';
import { buildsFromCheckpoint, checkpointSession, releaseCheckpointSessions } from './checkpoint-models.ts';
import type { ModelRef } from './neural/session.ts';
import { mediapipeSession, releaseMediapipeSessions } from './mediapipe-models.ts';
import * as dense from './neural/dense.ts';
import { detectPeople } from './neural/dwpose.ts';
import { detectFaces } from './neural/face.ts';
import { detectBodies } from './neural/mediapipe-pose.ts';
import { mlsd } from './neural/mlsd.ts';
import { uniformerSegmentation } from './neural/uniformer.ts';
import { drawPose } from './pose-draw.ts';
import { qrcode } from './qrcode.ts';
import { scribbleFromCanny, scribbleFromSoftEdges } from './scribble.ts';
import { shuffle } from './shuffle.ts';
import { tile } from './tile.ts';

export { AnnotatorMissingError } from './errors.ts';
export { annotatorModel, annotatorStatus, assertAnnotatorAvailable, hasAnnotatorFiles, type AnnotatorStatus } from './models.ts';
export { inpaintCondition } from './inpaint.ts';
import { releaseAnnotatorSessions as releaseOnnxSessions } from './neural/session.ts';

/** Releases every cached annotator session, installed ONNX files and bundled models alike (tests, shutdown). */
export async function releaseAnnotatorSessions(): Promise<void> {
  await Promise.all([releaseOnnxSessions(), releaseMediapipeSessions(), releaseCheckpointSessions()]);
}

export interface AnnotateOptions {
  width: number;
  height: number;
  modelsDir: string;
  /** inpaint: the mask (white = repaint), any size (resized to width x height) */
  mask?: RgbImage;
  /** shuffle: the flow field's seed (the request's seed, so a seed reproduces the whole image) */
  seed?: number;
}

/**
 * The hint of `type` for `image`, width x height RGB. Neural types throw AnnotatorMissingError (naming the
 * file) when their model is not installed; scribble then falls back to canny edges, and face_detector and
 * openpose to the MediaPipe models bundled in the npm dependencies (see annotatorNote).
 * inpaint returns a preview with masked pixels black (the image itself without a mask): feed the ControlNet
 * inpaintCondition() instead, whose masked pixels are -1.
 */
export async function annotate(type: ControlNetType, image: RgbImage, opts: AnnotateOptions): Promise<RgbImage> {
  const { width, height, modelsDir } = opts;
  // scribble, face_detector and openpose have fallbacks; every other neural type needs its files before any work
  const bundled = BUNDLED[type] !== undefined && !hasAnnotatorFiles(type, modelsDir);
  const files: ModelRef[] = type === 'scribble' || bundled ? [] : await installedModels(type, modelsDir);
  const img = await resizeRgb(image, width, height);
  switch (type) {
    case 'canny':
      return canny(img);
    case 'shuffle':
      return shuffle(img, opts.seed ?? 0);
    case 'tile':
      return tile(img);
    case 'qrcode':
      return qrcode(img);
    case 'inpaint':
      // no mask: nothing is masked, so the condition is the image itself
      return opts.mask ? inpaintPreview(img, await resizeRgb(opts.mask, width, height)) : img;
    case 'scribble': {
      if (!hasAnnotatorFiles('hed', modelsDir) && !installedCheckpoint('hed', modelsDir)) return scribbleFromCanny(img);
      const [hedModel] = await installedModels('hed', modelsDir);
      return scribbleFromSoftEdges(await dense.hedMap(img, hedModel!), width, height);
    }
    case 'depth':
      // Depth Anything's ONNX file when installed, else MiDaS DPT-Hybrid built from its checkpoint
      return hasAnnotatorFiles('depth', modelsDir) ? dense.depth(img, files[0]!) : dense.midasDepth(img, files[0]!);
    case 'normal':
      return dense.normal(img, files[0]!);
    case 'hed':
      return dense.hed(img, files[0]!);
    case 'softedge':
      return dense.softedge(img, files[0]!);
    case 'lineart':
      return dense.lineart(img, files[0]!);
    case 'segmentation':
      // SegFormer's ONNX file when installed, else UniFormer + UperNet built from its checkpoint (seg_ufade20k)
      return hasAnnotatorFiles('segmentation', modelsDir) ? dense.segmentation(img, files[0]!) : uniformerSegmentation(img, files[0]!);
    case 'mlsd':
      return mlsd(img, files[0]!);
    case 'openpose':
      if (bundled) return drawPose(await detectBodies(img, await mediapipeSession('pose_detection'), await mediapipeSession('pose_landmark_full')), width, height);
      return drawPose(await detectPeople(img, files[0]!, files[1]!), width, height);
    case 'face_detector':
      // the pupils come from MediaPipe's iris model (committed in assets/) unless the landmark model gives them
      if (bundled) return drawFaces(await detectFaces(img, await mediapipeSession('face_detection_short_range'), await mediapipeSession('face_landmark'), () => mediapipeSession('iris_landmark')), width, height);
      return drawFaces(await detectFaces(img, files[0]!, files[1]!, () => mediapipeSession('iris_landmark')), width, height);
  }
}

/**
 * The type's installed models: its ONNX files when all are installed, else the network built from its original
 * checkpoint when that is installed; throws AnnotatorMissingError naming what to install otherwise.
 */
async function installedModels(type: ControlNetType, modelsDir: string): Promise<ModelRef[]> {
  if (!hasAnnotatorFiles(type, modelsDir) && buildsFromCheckpoint(type)) {
    const ckpt = installedCheckpoint(type, modelsDir);
    if (ckpt) return [await checkpointSession(type, ckpt, modelsDir)];
  }
  return requireAnnotatorFiles(type, modelsDir);
}

/** What the annotator of `type` will actually run with this models folder, for the response's meta. */
export function annotatorNote(type: ControlNetType, modelsDir: string): string | undefined {
  if (type === 'scribble' && !hasAnnotatorFiles('hed', modelsDir) && !installedCheckpoint('hed', modelsDir)) return 'scribble from canny edges (hed annotator model not installed)';
  const bundled = BUNDLED[type];
  if (bundled && !hasAnnotatorFiles(type, modelsDir)) return bundled.note;
  return undefined;
}
