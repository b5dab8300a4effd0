// auto_hint: turns the input image into the hint each ControlNet type was trained on. The image is first
// resized to the output size (the annotator's detect resolution), and the hint comes back at that size.
import type { ControlNetType, RgbImage } from '../pipeline/types.ts';
import { canny } from './canny.ts';
import { drawFaces } from './face-draw.ts';
import { resizeRgb } from './image.ts';
import { inpaintPreview } from './inpaint.ts';
import { hasAnnotatorFiles, requireAnnotatorFiles } from './models.ts';
import * as dense from './neural/dense.ts';
import { detectPeople } from './neural/dwpose.ts';
import { detectFaces } from './neural/face.ts';
import { mlsd } from './neural/mlsd.ts';
import { drawPose } from './pose-draw.ts';
import { qrcode } from './qrcode.ts';
import { scribbleFromCanny, scribbleFromSoftEdges } from './scribble.ts';
import { shuffle } from './shuffle.ts';
import { tile } from './tile.ts';

export { AnnotatorMissingError } from './errors.ts';
export { annotatorModel, hasAnnotatorFiles } from './models.ts';
export { inpaintCondition } from './inpaint.ts';
export { releaseAnnotatorSessions } from './neural/session.ts';

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
 * file) when their model is not installed; scribble then falls back to canny edges (see annotatorNote).
 * inpaint returns a preview with masked pixels black (the image itself without a mask): feed the ControlNet
 * inpaintCondition() instead, whose masked pixels are -1.
 */
export async function annotate(type: ControlNetType, image: RgbImage, opts: AnnotateOptions): Promise<RgbImage> {
  const { width, height, modelsDir } = opts;
  // scribble has a fallback; every other neural type needs its files before any work is done
  const files = type === 'scribble' ? [] : requireAnnotatorFiles(type, modelsDir);
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
      if (!hasAnnotatorFiles('hed', modelsDir)) return scribbleFromCanny(img);
      const [hedPath] = requireAnnotatorFiles('hed', modelsDir);
      return scribbleFromSoftEdges(await dense.hedMap(img, hedPath!), width, height);
    }
    case 'depth':
      return dense.depth(img, files[0]!);
    case 'normal':
      return dense.normal(img, files[0]!);
    case 'hed':
      return dense.hed(img, files[0]!);
    case 'softedge':
      return dense.softedge(img, files[0]!);
    case 'lineart':
      return dense.lineart(img, files[0]!);
    case 'segmentation':
      return dense.segmentation(img, files[0]!);
    case 'mlsd':
      return mlsd(img, files[0]!);
    case 'openpose':
      return drawPose(await detectPeople(img, files[0]!, files[1]!), width, height);
    case 'face_detector':
      return drawFaces(await detectFaces(img, files[0]!, files[1]!), width, height);
  }
}

/** What the annotator of `type` will actually run with this models folder, for the response's meta. */
export function annotatorNote(type: ControlNetType, modelsDir: string): string | undefined {
  if (type === 'scribble' && !hasAnnotatorFiles('hed', modelsDir)) return 'scribble from canny edges (hed annotator model not installed)';
  return undefined;
}
