import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture } from '../../support/fixtures.ts';
import { luma } from '../../../src/engine/annotators/image.ts';
import { otsuThreshold, qrcode } from '../../../src/engine/annotators/qrcode.ts';
import { equalFraction, firstChannel } from './agreement.ts';

const fx = loadFixture('annotators/qrcode');
const images = loadFixture('annotators/canny');

for (const name of fx.meta.names as string[]) {
  test(`qrcode equals cv2 gray + Otsu binarization on ${name}`, () => {
    const src = images.get(`${name}/image`);
    const [h, w] = src.shape as [number, number];
    const img = { width: w, height: h, data: src.data as Uint8Array };
    assert.equal(equalFraction(luma(img), fx.get(`${name}/gray`).data as Uint8Array), 1, 'luma equals cv2.COLOR_RGB2GRAY');
    assert.equal(otsuThreshold(luma(img)), fx.f32(`${name}/otsu`)[0]);
    assert.equal(equalFraction(firstChannel(qrcode(img).data), fx.get(`${name}/binary`).data as Uint8Array), 1);
  });
}
