import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture } from '../../support/fixtures.ts';
import { drawFaceMesh, drawFaces } from '../../../src/engine/annotators/face-draw.ts';
import { rgbImage } from '../../../src/engine/annotators/image.ts';
import { equalFraction, nonZero } from './agreement.ts';

const fx = loadFixture('annotators/face');
const W = fx.meta.W as number, H = fx.meta.H as number;
const lm = fx.f32('landmarks');
const face = Array.from({ length: lm.length / 2 }, (_, i) => ({ x: lm[2 * i]!, y: lm[2 * i + 1]! }));

test('face mesh is drawn as the MediaPipe face annotator draws it', () => {
  const canvas = rgbImage(W, H);
  drawFaceMesh(canvas, face);
  const ref = fx.get('canvas').data as Uint8Array;
  assert.ok(nonZero(ref) > 2000);
  const frac = equalFraction(canvas.data, ref);
  assert.equal(frac, 1, `${((1 - frac) * 100).toFixed(3)}% of values differ`);
});

test('faces under 64 px are skipped, as min_face_size_pixels', () => {
  const small = face.map((p) => ({ x: 0.5 + (p.x - 0.5) * 0.1, y: 0.5 + (p.y - 0.5) * 0.1 }));
  assert.equal(nonZero(drawFaces([small], W, H).data), 0);
  assert.ok(nonZero(drawFaces([face], W, H).data) > 0);
});

test("pupils at the image's edges follow draw_pupils' numpy slices (image[y-2:y+2, x-2:x+2]: a negative start selects nothing)", () => {
  // pixel counts numpy gives on a 20 x 20 image for a pupil at (x, y), checked with numpy itself
  const cases: [number, number, number][] = [[0.05, 0.5, 0], [0.99, 0.5, 12], [0.1, 0.5, 16], [0.5, 0.02, 0], [0.5, 0.99, 12]];
  for (const [x, y, want] of cases) {
    const f = Array.from({ length: 478 }, () => ({ x: 2, y: 2 })); // every other point outside: nothing else drawn
    f[468] = { x, y };
    const canvas = rgbImage(20, 20);
    drawFaceMesh(canvas, f);
    assert.equal(nonZero(canvas.data) / 3, want, `pupil at (${x}, ${y})`);
  }
});
