// Reported: an RGBA control image (black strokes on a transparent background, as line-art tools export) lost
// its alpha, so the strokes vanished and the result equalled an all-black control image. Every image input,
// in every format with transparency, is resolved for its role before anything sees it (oracle:
// tools/oracle/alpha_inputs.py: ControlNet's HWC3 for hints, A1111's flatten for init images and
// create_binary_mask for masks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeRgb } from '../../src/inputs/image.ts';
import { FIXTURES, loadFixture } from '../support/fixtures.ts';
import { toChw } from '../../src/engine/pipeline/images.ts';
import { binaryMask } from '../../src/engine/pipeline/images.ts';

const fx = loadFixture('inputs/alpha');
const W: number = fx.meta.width, H: number = fx.meta.height;
const cases: string[] = fx.meta.cases;
const file = (name: string) => readFileSync(join(FIXTURES, 'inputs', 'alpha', name));
const u8 = (k: string) => fx.get(k).data as Uint8Array;
const MAX = 1 << 24;

test('the reported case: black strokes on a transparent background stay black strokes on white', async () => {
  const hint = await decodeRgb('control_image', file('strokes-rgba.png'), W, H, MAX);
  const black = new Uint8Array(W * H * 3);
  assert.notDeepEqual(toChw(hint, '0,1'), toChw({ width: W, height: H, data: black }, '0,1'), 'not the all-black hint');
  assert.equal(hint.data[0], 255, 'the transparent background is white');
  assert.equal(hint.data[(4 * W + 5) * 3], 0, 'an opaque stroke pixel is black');
  assert.deepEqual(hint.data, u8('strokes-rgba_png.hint'));
});

for (const name of cases) {
  const key = name.replace('.', '_');
  test(`${name}: hint = ControlNet HWC3 (exact), init = A1111 flatten over white (±1), mask = A1111's alpha-or-luma`, async () => {
    const hint = await decodeRgb('control_image', file(name), W, H, MAX);
    assert.deepEqual(hint.data, u8(`${key}.hint`), 'hint');
    const init = await decodeRgb('init_image', file(name), W, H, MAX);
    assert.deepEqual(init.data, u8(`${key}.hint`), 'init: the same composite as the hint');
    const flat = u8(`${key}.init`);
    const worst = init.data.reduce((m, v, i) => Math.max(m, Math.abs(v - flat[i]!)), 0);
    assert.ok(worst <= 1, `init vs A1111 flatten: max difference ${worst} (PIL paste rounds, HWC3 truncates)`);
    const mask = await decodeRgb('mask_image', file(name), W, H, MAX);
    const grey = u8(`${key}.mask`);
    // A1111 binarizes its grey mask; ours is binarized at luma / 255 > 0.5 by the pipeline: compare the grey
    // where the mask is the alpha (all three channels equal to it), and the binarized masks always.
    if (mask.data.every((v, i) => i % 3 !== 0 || (v === mask.data[i + 1] && v === mask.data[i + 2]))) {
      assert.deepEqual(Uint8Array.from({ length: W * H }, (_, i) => mask.data[3 * i]!), grey, 'grey mask');
    }
    assert.deepEqual(binaryMask(mask), Float32Array.from(grey, (g) => (g / 255 > 0.5 ? 1 : 0)), 'binary mask');
  });
}

test('transparency is resolved before the resize to the output size (composite first, as the references do)', async () => {
  const hint = await decodeRgb('control_image', file('gradient-rgba.png'), 2 * W, 2 * H, MAX);
  const expected = await sharp(Buffer.from(u8('gradient-rgba_png.hint')), { raw: { width: W, height: H, channels: 3 } })
    .resize(2 * W, 2 * H, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
  assert.deepEqual(Buffer.from(hint.data), expected);
});

test('an opaque image decodes as before (no alpha: nothing composited)', async () => {
  const rgb = Buffer.from(Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 37) % 256));
  const png = await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
  for (const field of ['control_image', 'init_image', 'mask_image']) {
    assert.deepEqual(Buffer.from((await decodeRgb(field, png, W, H, MAX)).data), rgb, field);
  }
});
