// The dense-map annotators: one network pass over the resized image, then the post-processing in post.ts.
// Input sizes follow each model: multiples of 14 for Depth Anything (ViT patches), multiples of 64 for MiDaS
// DPT-Hybrid (as its detector's resize_image), 512x512 for SegFormer, multiples of 16 for the convolutional
// edge/normal/lineart networks (their pooling strides).
import type { RgbImage } from '../../pipeline/types.ts';
import { cvRound } from '../draw.ts';
import { IMAGENET_MEAN, IMAGENET_STD, grayToRgb, resizeRgb, toTensorData } from '../image.ts';
import { ADE20K_PALETTE } from './ade20k.ts';
import { depthImage, hedBytes, lineartImage, normalImage, planeOf, resizeBytes, segmentationImage, unitMapBytes } from './post.ts';
import { runF32, sessionOf, type ModelRef } from './session.ts';

const ONE = [0, 0, 0], UNIT = [1, 1, 1];

/** Nearest multiple of m (at least m), ties to even as numpy's round in DPTImageProcessor. */
export function multipleOf(v: number, m: number): number {
  return Math.max(m, cvRound(v / m) * m);
}

/**
 * Depth Anything's input size, as transformers' DPTImageProcessor (size 518, keep_aspect_ratio,
 * ensure_multiple_of 14): one scale for both sides, the one of 518/h and 518/w closer to 1.
 */
export function depthInputSize(width: number, height: number, side = 518): { w: number; h: number } {
  const sh = side / height, sw = side / width;
  const k = Math.abs(1 - sw) < Math.abs(1 - sh) ? sw : sh;
  return { w: multipleOf(width * k, 14), h: multipleOf(height * k, 14) };
}

async function prepared(img: RgbImage, w: number, h: number, mean: readonly number[], std: readonly number[], opts: { scale?: number; bgr?: boolean } = {}) {
  const r = await resizeRgb(img, w, h);
  return { data: toTensorData(r, mean, std, opts), dims: [1, 3, h, w] };
}

export async function depth(img: RgbImage, model: ModelRef): Promise<RgbImage> {
  const { w, h } = depthInputSize(img.width, img.height);
  const x = await prepared(img, w, h, IMAGENET_MEAN, IMAGENET_STD);
  const [out] = await runF32(await sessionOf(model), x.data, x.dims);
  return depthImage(planeOf(out!), img.width, img.height);
}

/**
 * Depth from MiDaS DPT-Hybrid (the network built from dpt_hybrid-midas-501f0c75.pt), as controlnet_aux 0.0.10's
 * MidasDetector: the image at sides rounded to multiples of 64 (what its resize_image gives at the detect
 * resolution; the network needs multiples of 32), pixels / 127.5 - 1, the [1, H, W] relative inverse depth
 * min-max normalised to uint8 and resized to the image's size (depthImage, shared with Depth Anything).
 */
export async function midasDepth(img: RgbImage, model: ModelRef): Promise<RgbImage> {
  const w = multipleOf(img.width, 64), h = multipleOf(img.height, 64);
  const x = await prepared(img, w, h, UNIT, UNIT, { scale: 1 / 127.5 });
  const [out] = await runF32(await sessionOf(model), x.data, x.dims);
  return depthImage(planeOf(out!), img.width, img.height);
}

export async function normal(img: RgbImage, model: ModelRef): Promise<RgbImage> {
  const w = multipleOf(img.width, 16), h = multipleOf(img.height, 16);
  const x = await prepared(img, w, h, IMAGENET_MEAN, IMAGENET_STD);
  const [out] = await runF32(await sessionOf(model), x.data, x.dims);
  return normalImage(out!, img.width, img.height);
}

/** HED soft edges as a uint8 map at the image's size (also the input of scribble). */
export async function hedMap(img: RgbImage, model: ModelRef): Promise<Uint8Array> {
  const w = multipleOf(img.width, 16), h = multipleOf(img.height, 16);
  const x = await prepared(img, w, h, ONE, UNIT, { scale: 1 }); // ControlNetHED subtracts its own mean
  const sides = await runF32(await sessionOf(model), x.data, x.dims);
  return resizeBytes(hedBytes(sides, w, h), w, h, 1, img.width, img.height);
}

export async function hed(img: RgbImage, model: ModelRef): Promise<RgbImage> {
  return grayToRgb(await hedMap(img, model), img.width, img.height);
}

export async function softedge(img: RgbImage, model: ModelRef): Promise<RgbImage> {
  const w = multipleOf(img.width, 16), h = multipleOf(img.height, 16);
  const x = await prepared(img, w, h, ONE, UNIT, { bgr: true });
  const outs = await runF32(await sessionOf(model), x.data, x.dims);
  const last = outs[outs.length - 1]!;
  return grayToRgb(resizeBytes(unitMapBytes(last), w, h, 1, img.width, img.height), img.width, img.height);
}

export async function lineart(img: RgbImage, model: ModelRef): Promise<RgbImage> {
  const w = multipleOf(img.width, 16), h = multipleOf(img.height, 16);
  const x = await prepared(img, w, h, ONE, UNIT);
  const [out] = await runF32(await sessionOf(model), x.data, x.dims);
  return lineartImage(out!, img.width, img.height);
}

export async function segmentation(img: RgbImage, model: ModelRef): Promise<RgbImage> {
  const x = await prepared(img, 512, 512, IMAGENET_MEAN, IMAGENET_STD);
  const [logits] = await runF32(await sessionOf(model), x.data, x.dims);
  return segmentationImage(logits!, img.width, img.height, ADE20K_PALETTE);
}
