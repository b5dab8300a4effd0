import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture } from '../../support/fixtures.ts';
import { drawPose } from '../../../src/engine/annotators/pose-draw.ts';
import { wholebodyToPerson } from '../../../src/engine/annotators/neural/dwpose.ts';
import { equalFraction, nonZero } from './agreement.ts';

test('whole-body keypoints are drawn as the DWPose annotator draws them', () => {
  const fx = loadFixture('annotators/pose');
  const W = fx.meta.W as number, H = fx.meta.H as number;
  const kp = fx.f32('keypoints'), sc = fx.f32('scores');
  const n = fx.get('scores').shape[0]!;
  const people = Array.from({ length: n }, (_, p) => {
    const xy = Array.from({ length: 133 }, (_, j): [number, number] => [kp[(p * 133 + j) * 2]!, kp[(p * 133 + j) * 2 + 1]!]);
    return wholebodyToPerson(xy, Array.from(sc.subarray(p * 133, (p + 1) * 133)), W, H);
  });
  const ours = drawPose(people, W, H);
  const ref = fx.get('canvas').data as Uint8Array;
  assert.ok(nonZero(ref) > 1000);
  const frac = equalFraction(ours.data, ref);
  assert.equal(frac, 1, `${((1 - frac) * 100).toFixed(3)}% of values differ`);
});
