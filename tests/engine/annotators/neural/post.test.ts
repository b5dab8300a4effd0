import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture } from '../../../support/fixtures.ts';
import { ADE20K_PALETTE } from '../../../../src/engine/annotators/neural/ade20k.ts';
import {
  depthImage, depthToBytes, hedBytes, lineartImage, normalImage, paletteImage, resizeBytes, segmentationImage, unitMapBytes,
} from '../../../../src/engine/annotators/neural/post.ts';
import { countOver, equalFraction, firstChannel } from '../agreement.ts';

const fx = loadFixture('annotators/dense');
const out = (key: string) => ({ dims: fx.get(key).shape, data: fx.f32(key) });
const u8 = (key: string) => fx.get(key).data as Uint8Array;

test('depth: min-max to uint8 equals controlnet_aux midas', () => {
  const d = fx.get('depth/out');
  const bytes = depthToBytes({ width: d.shape[1]!, height: d.shape[0]!, data: fx.f32('depth/out') });
  assert.equal(equalFraction(bytes, u8('depth/u8')), 1);
});

test('depth: resized hint within 1 gray level of cv2.resize INTER_LINEAR (OpenCV 5 rounds uint8 differently)', () => {
  const d = fx.get('depth/out');
  const img = depthImage({ width: d.shape[1]!, height: d.shape[0]!, data: fx.f32('depth/out') }, 64, 48);
  const ref = u8('depth/resized');
  assert.equal(countOver(firstChannel(img.data), ref, 1), 0);
  const frac = equalFraction(firstChannel(img.data), ref);
  assert.ok(frac > 0.85, `exact on ${(frac * 100).toFixed(1)}%`);
});

test('normal: NormalBae output to RGB equals controlnet_aux normalbae', () => {
  const o = out('normal/out');
  const h = o.dims[2]!, w = o.dims[3]!;
  const same = normalImage(o, w, h);
  assert.equal(equalFraction(same.data, u8('normal/u8')), 1);
  const resized = normalImage(o, 40, 30);
  assert.equal(countOver(resized.data, u8('normal/resized'), 1), 0);
});

test('hed: side maps to soft edges equal controlnet_aux hed', () => {
  const sides = [0, 1, 2, 3, 4].map((k) => out(`hed/side${k}`));
  const [h, w] = fx.get('hed/u8').shape as [number, number];
  const bytes = hedBytes(sides, w, h);
  const ref = u8('hed/u8');
  assert.equal(countOver(bytes, ref, 1), 0);
  assert.ok(equalFraction(bytes, ref) > 0.999, `agreement ${equalFraction(bytes, ref)}`);
});

test('pidinet / lineart maps to uint8 equal the annotators', () => {
  assert.equal(equalFraction(unitMapBytes(out('unit/out')), u8('unit/u8')), 1);
  const img = lineartImage(out('unit/out'), 40, 28);
  assert.equal(countOver(firstChannel(img.data), u8('lineart/resized'), 1), 0);
});

test('segmentation: logits to ADE20k colors equal torch bilinear + argmax + palette', () => {
  const palette = u8('seg/palette');
  assert.equal(equalFraction(ADE20K_PALETTE, palette), 1, 'palette equals controlnet_aux util.ade_palette');
  const img = segmentationImage(out('seg/logits'), 40, 36, ADE20K_PALETTE);
  const ref = u8('seg/color');
  const frac = equalFraction(img.data, ref);
  assert.ok(frac >= 0.999, `agreement ${(frac * 100).toFixed(3)}% (argmax ties between near-equal logits may differ)`);
  const ids = fx.get('seg/ids').data as Int32Array;
  assert.equal(equalFraction(paletteImage(ids, 40, 36, ADE20K_PALETTE).data, ref), 1);
});

test('resizeBytes keeps the size when it already fits', () => {
  const a = Uint8Array.of(1, 2, 3, 4);
  assert.equal(resizeBytes(a, 2, 2, 1, 2, 2), a);
});
