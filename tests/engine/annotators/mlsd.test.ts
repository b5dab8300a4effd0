import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture } from '../../support/fixtures.ts';
import { decodeLines, drawSegments } from '../../../src/engine/annotators/neural/mlsd.ts';
import { equalFraction, firstChannel } from './agreement.ts';

const fx = loadFixture('annotators/mlsd');
const tp = fx.get('tpmap');

test('M-LSD decoding equals controlnet_aux pred_lines', () => {
  const segs = decodeLines({ dims: tp.shape, data: tp.data as Float32Array });
  const ref = fx.f32('lines');
  assert.ok(ref.length / 4 >= 10, 'the fixture has lines');
  assert.equal(segs.length, ref.length / 4);
  const flat = segs.flat();
  for (let i = 0; i < flat.length; i++) assert.ok(Math.abs(flat[i]! - ref[i]!) < 1e-4, `value ${i}: ${flat[i]} vs ${ref[i]}`);
});

test('M-LSD lines are drawn as MLSDdetector draws them', () => {
  const h = tp.shape[2]! * 2, w = tp.shape[3]! * 2;
  const segs = decodeLines({ dims: tp.shape, data: tp.data as Float32Array });
  const img = drawSegments(segs, w, h);
  assert.equal(equalFraction(firstChannel(img.data), fx.get('drawn').data as Uint8Array), 1);
});
