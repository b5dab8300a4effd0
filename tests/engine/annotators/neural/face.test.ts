// The face detector stage against tools/oracle/annotator_face.py (numpy re-implementations of MediaPipe's
// SsdAnchors, TensorsToDetections, weighted NMS, detection/landmark projection and face ROI calculators, and
// OpenCV's warpPerspective for the crops).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFixture, maxAbsDiff } from '../../../support/fixtures.ts';
import {
  cropRoi, decodeDetections, faceRoi, letterboxRoi, projectDetection, projectLandmarks, ssdAnchors, weightedNms,
  type FaceDetection, type NormRect,
} from '../../../../src/engine/annotators/neural/face.ts';
import { countOver } from '../agreement.ts';

const fx = loadFixture('annotators/face_detect');
const W = fx.meta.W as number, H = fx.meta.H as number;

const rows = (d: FaceDetection[]) => d.flatMap((x) => [x.score, x.xmin, x.ymin, x.width, x.height, ...x.keypoints.flat()]);
const fromRows = (a: Float32Array): FaceDetection[] => Array.from({ length: a.length / 17 }, (_, i) => {
  const r = a.subarray(i * 17, i * 17 + 17);
  return { score: r[0]!, xmin: r[1]!, ymin: r[2]!, width: r[3]!, height: r[4]!, keypoints: Array.from({ length: 6 }, (_, k) => [r[5 + 2 * k]!, r[6 + 2 * k]!] as [number, number]) };
});

test('SSD anchors of BlazeFace short range: 16x16x2 + 8x8x6 = 896, as SsdAnchorsCalculator', () => {
  const a = ssdAnchors();
  assert.equal(a.length, 896);
  const ref = fx.f32('anchors');
  assert.equal(maxAbsDiff(a.flatMap((x) => [x.x, x.y, x.w, x.h]), ref), 0);
});

test('box and keypoint decoding with sigmoid scores, clipping and the 0.5 threshold, as TensorsToDetections', () => {
  const d = decodeDetections(fx.f32('raw_boxes'), fx.f32('raw_scores'), ssdAnchors());
  const ref = fx.f32('decoded');
  assert.equal(d.length, 9);
  assert.equal(d.length, ref.length / 17);
  assert.equal(maxAbsDiff(rows(d), ref), 0);
  assert.equal(d.filter((x) => x.score === 1).length, 1, 'logit 150 is clipped to 100');
});

test('weighted NMS (IoU > 0.3) merges each cluster into its score-weighted mean, best first', () => {
  const out = weightedNms(fromRows(fx.f32('decoded')));
  const ref = fx.f32('nms');
  assert.equal(out.length, 3);
  assert.equal(out.length, ref.length / 17);
  const err = maxAbsDiff(rows(out), ref);
  assert.ok(err < 1e-6, `max error ${err}`);
  // the merge moves the box: the cluster's mean is not its best member
  assert.ok(Math.abs(out[1]!.xmin - fromRows(fx.f32('decoded')).sort((a, b) => b.score - a.score)[1]!.xmin) > 1e-3, 'merged box differs from its best member');
});

test('detections projected from the letterbox, then the upright 1.5x square face ROI (rotation from the eyes)', () => {
  const nms = fromRows(fx.f32('nms'));
  const proj = nms.map((d) => projectDetection(d, letterboxRoi(W, H), W, H));
  const perr = maxAbsDiff(rows(proj), fx.f32('projected'));
  assert.ok(perr < 1e-6, `projection error ${perr}`);
  const rois = fromRows(fx.f32('projected')).map((d) => faceRoi(d, W, H));
  const rerr = maxAbsDiff(rois.flatMap((r) => [r.cx, r.cy, r.w, r.h, r.rotation]), fx.f32('rois'));
  assert.ok(rerr < 1e-6, `roi error ${rerr}`);
  for (const r of rois) assert.ok(Math.abs(r.w * W - r.h * H) < 1e-3, 'square in pixels');
  assert.ok(Math.abs(rois[0]!.rotation) > 0.2, 'the tilted face is turned upright');
});

test('landmarks on the crop are mapped back to the image through the rotated ROI', () => {
  const r = fx.f32('rois'), lm = fx.f32('crop_landmarks'), ref = fx.f32('image_landmarks');
  const n = lm.length / (2 * (r.length / 5));
  const got: number[] = [];
  for (let i = 0; i < r.length / 5; i++) {
    const roi: NormRect = { cx: r[5 * i]!, cy: r[5 * i + 1]!, w: r[5 * i + 2]!, h: r[5 * i + 3]!, rotation: r[5 * i + 4]! };
    for (const p of projectLandmarks(lm.subarray(i * n * 2, (i + 1) * n * 2), 2, n, roi)) got.push(p.x, p.y);
  }
  const err = maxAbsDiff(got, ref);
  assert.ok(err < 1e-6, `max error ${err}`);
});

test('crops sample the image as warpPerspective does (zero border letterbox, rotated replicate crop)', () => {
  const img = { width: 40, height: 30, data: fx.get('img').data as Uint8Array };
  const lb = cropRoi(img, letterboxRoi(40, 30), 32, 'zero');
  const lbRef = fx.get('letterbox').data as Uint8Array;
  // OpenCV interpolates in 5-bit fixed point: off by one at most
  assert.equal(countOver(lb, lbRef, 1), 0);
  assert.ok(countOver(lb, lbRef, 0) < 0.1 * lb.length, `${countOver(lb, lbRef, 0)} of ${lb.length} differ by 1`);
  const [cx, cy, w, h, rotation] = fx.meta.face_crop_roi as number[];
  const fc = cropRoi(img, { cx: cx!, cy: cy!, w: w!, h: h!, rotation: rotation! }, 24, 'replicate');
  const fcRef = fx.get('face_crop').data as Uint8Array;
  assert.equal(countOver(fc, fcRef, 1), 0);
  assert.ok(countOver(fc, fcRef, 0) < 0.1 * fc.length, `${countOver(fc, fcRef, 0)} of ${fc.length} differ by 1`);
});
