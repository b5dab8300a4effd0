import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boxToCenterScale, decodePersons, decodeSimcc, wholebodyToPerson } from '../../../../src/engine/annotators/neural/dwpose.ts';

const ANCHORS = 80 * 80 + 40 * 40 + 20 * 20;

function yolox(cells: { i: number; o: number[] }[]) {
  const data = new Float32Array(ANCHORS * 85);
  for (const c of cells) data.set(c.o, c.i * 85);
  return { dims: [1, ANCHORS, 85], data };
}

test('YOLOX decoding: grid offsets, exp sizes, person score, NMS and the 0.3 threshold', () => {
  const s8 = (gx: number, gy: number) => gy * 80 + gx;
  const out = yolox([
    { i: s8(10, 20), o: [0.5, 0.5, Math.log(4), Math.log(8), 0.9, 0.9] }, // (84, 164) 32x64, score 0.81
    { i: s8(11, 20), o: [0.0, 0.5, Math.log(4), Math.log(8), 0.9, 0.8] }, // overlaps the first, lower score
    { i: s8(60, 60), o: [0, 0, Math.log(2), Math.log(2), 0.5, 0.5] }, // score 0.25: dropped
    { i: 80 * 80 + 40 * 40 + 3 * 20 + 2, o: [0, 0, 0, 0, 1, 0.95] }, // stride 32 cell (2, 3): (64, 96) 32x32
  ]);
  const boxes = decodePersons(out, 2); // letterbox ratio 2: boxes come back halved, best score first
  const expected = [[24, 40, 40, 56], [34, 66, 50, 98]];
  assert.equal(boxes.length, 2);
  // sizes pass through float32 log/exp, hence the 1e-5
  boxes.forEach((b, i) => b.forEach((v, k) => assert.ok(Math.abs(v - expected[i]![k]!) < 1e-5, `box ${i}: ${b}`)));
});

test('box to centre/scale: padding 1.25 and the model aspect 288:384', () => {
  assert.deepEqual(boxToCenterScale([0, 0, 30, 40], 288, 384), { cx: 15, cy: 20, sw: 37.5, sh: 50 });
  assert.deepEqual(boxToCenterScale([0, 0, 80, 40], 288, 384), { cx: 40, cy: 20, sw: 100, sh: 100 / 0.75 });
});

test('SimCC decoding: argmax / 2 mapped back through the crop; score is the smaller maximum', () => {
  const k = 133, sx = new Float32Array(k * 576), sy = new Float32Array(k * 768);
  sx[100] = 0.7; sy[300] = 0.9; // keypoint 0
  sx[576 + 10] = -0.2; sy[768 + 10] = -0.1; // keypoint 1: not positive, located at -1
  const cs = { cx: 50, cy: 60, sw: 72, sh: 96 };
  const { xy, scores } = decodeSimcc({ dims: [1, k, 576], data: sx }, { dims: [1, k, 768], data: sy }, 0, cs, 288, 384);
  assert.ok(Math.abs(xy[0]![0] - ((100 / 2 / 288) * 72 + 50 - 36)) < 1e-9);
  assert.ok(Math.abs(xy[0]![1] - ((300 / 2 / 384) * 96 + 60 - 48)) < 1e-9);
  assert.ok(Math.abs(scores[0]! - 0.7) < 1e-6);
  assert.ok(Math.abs(xy[1]![0] - ((-0.5 / 288) * 72 + 14)) < 1e-9);
});

test('whole-body to OpenPose: neck from the shoulders, reordered body, visibility thresholds', () => {
  const xy = Array.from({ length: 133 }, (_, j): [number, number] => [j, 2 * j]);
  const scores = Array.from({ length: 133 }, () => 0.9);
  scores[3] = 0.3; // left ear at exactly 0.3: the body needs > 0.3
  scores[100] = 0.3; // a hand point at exactly 0.3: hands and face need >= 0.3
  scores[101] = 0.29;
  const p = wholebodyToPerson(xy, scores, 100, 200);
  assert.deepEqual(p.body[1], { x: 5.5 / 100, y: 11 / 200 }); // neck
  assert.deepEqual(p.body[2], { x: 6 / 100, y: 12 / 200 }); // right shoulder = COCO 6
  assert.equal(p.body[17], null); // left ear = COCO 3
  // COCO index j >= 17 moves to j + 1 (the neck is inserted at 17); the first hand starts at 92
  assert.deepEqual(p.hands[0]![100 + 1 - 92], { x: 100 / 100, y: 200 / 200 });
  assert.equal(p.hands[0]![101 + 1 - 92], null);
  assert.equal(p.face.length, 68);
  assert.equal(p.hands[1]!.length, 21);
});
