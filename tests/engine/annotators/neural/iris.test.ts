// The iris stage of face_detector against tools/oracle/annotator_iris.py: MediaPipe's iris pipeline (eye ROI,
// ImageCroppingCalculator's crop, ImageTransformationCalculator's resize and flip, landmark decoding and
// projection) re-implemented with numpy / OpenCV, and the iris model run by Google's LiteRT interpreter on the
// same 64x64 inputs. Cases: the astronaut photo (an upscaled crop) and a tilted 4x enlargement (a shrunk, rotated
// crop).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { FIXTURES, loadFixture } from '../../../support/fixtures.ts';
import { mediapipeSession, releaseMediapipeSessions } from '../../../../src/engine/annotators/mediapipe-models.ts';
import {
  cropEye, decodeIris, eyeModelInput, eyeRoi, LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS, runIrisModel, withIris,
} from '../../../../src/engine/annotators/neural/iris.ts';
import type { Landmark } from '../../../../src/engine/annotators/face-draw.ts';
import type { RgbImage } from '../../../../src/engine/pipeline/types.ts';
import { countOver } from '../agreement.ts';

const fx = loadFixture('annotators/iris');
const CASES = fx.meta.cases as string[];
const TOL = 1e-4;

after(releaseMediapipeSessions);

async function image(name: string): Promise<RgbImage> {
  if (name === 'astronaut') {
    const { data, info } = await sharp(readFileSync(join(FIXTURES, 'photos/astronaut-256.png'))).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data) };
  }
  const t = fx.get(`${name}/image`);
  return { width: t.shape[1]!, height: t.shape[0]!, data: t.data as Uint8Array };
}

/** A 468-point face whose only meaningful points are the fixture's eye corners 33, 133, 362, 263. */
function faceWithCorners(name: string): Landmark[] {
  const c = fx.f32(`${name}/corners`);
  const face: Landmark[] = Array.from({ length: 468 }, () => ({ x: 0.5, y: 0.5 }));
  [33, 133, 362, 263].forEach((idx, k) => { face[idx] = { x: c[2 * k]!, y: c[2 * k + 1]! }; });
  return face;
}

const EYES = [['left', LEFT_EYE_CORNERS, false], ['right', RIGHT_EYE_CORNERS, true]] as const;

test('eye ROIs from the corner landmarks (bounding box, rotation from corner to corner, square_long x 2.3)', async () => {
  for (const name of CASES) {
    const img = await image(name);
    for (const [eye, corners] of EYES) {
      const r = eyeRoi(faceWithCorners(name), corners, img.width, img.height);
      const ref = fx.f32(`${name}/${eye}/roi`);
      const got = [r.cx, r.cy, r.w, r.h, r.rotation];
      got.forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) < 1e-6, `${name} ${eye} roi[${i}] ${v} vs ${ref[i]}`));
      assert.ok(Math.abs(r.w * img.width - r.h * img.height) < 1e-3, 'square in pixels');
    }
  }
  const tilted = fx.f32('tilted/left/roi');
  assert.ok(Math.abs(tilted[4]!) > 0.3, 'the tilted case is rotated');
});

test("the eye ROIs equal MediaPipe's own calculators (LandmarksToDetection, DetectionsToRects, RectTransformation; mediapipe 0.10.14)", async () => {
  const mp = loadFixture('annotators/iris_mediapipe');
  for (const name of CASES) {
    const img = await image(name);
    const ref = mp.f32(`${name}/rois`);
    EYES.forEach(([eye, corners], k) => {
      const r = eyeRoi(faceWithCorners(name), corners, img.width, img.height);
      [r.cx, r.cy, r.w, r.h, r.rotation].forEach((v, i) => {
        // MediaPipe computes in float32: a few ulps of values under 1
        assert.ok(Math.abs(v - ref[5 * k + i]!) < 1e-6, `${name} ${eye} roi[${i}] ${v} vs MediaPipe's ${ref[5 * k + i]}`);
      });
    });
  }
});

test('eye crops and 64x64 model inputs equal OpenCV bit for bit (warpPerspective nearest, resize AREA / LINEAR, flip)', async () => {
  for (const name of CASES) {
    const img = await image(name);
    for (const [eye, corners, flip] of EYES) {
      const crop = cropEye(img, eyeRoi(faceWithCorners(name), corners, img.width, img.height))!;
      const cref = fx.get(`${name}/${eye}/crop`);
      assert.deepEqual([crop.height, crop.width], cref.shape.slice(0, 2), `${name} ${eye} crop size`);
      assert.equal(countOver(crop.data, cref.data as Uint8Array, 0), 0, `${name} ${eye} crop`);
      // the model input from the oracle's own crop, so that only the resize and flip are compared
      const oracleCrop = { width: cref.shape[1]!, height: cref.shape[0]!, data: cref.data as Uint8Array };
      const { image: x, padding } = eyeModelInput(oracleCrop, flip);
      const xref = fx.get(`${name}/${eye}/input`).data as Uint8Array;
      assert.equal(countOver(x.data, xref, 0), 0, `${name} ${eye} model input`);
      assert.deepEqual(padding, Array.from(fx.f32(`${name}/${eye}/pad`)));
    }
  }
});

test('iris_landmark imported from its TFLite file equals LiteRT on the eye inputs (max |diff| <= 1e-4)', async () => {
  const session = await mediapipeSession('iris_landmark');
  assert.deepEqual(session.outputNames, ['output_eyes_contours_and_brows', 'output_iris']);
  for (const name of CASES) {
    for (const [eye] of EYES) {
      const t = fx.get(`${name}/${eye}/input`);
      const raw = await runIrisModel(session, { width: 64, height: 64, data: t.data as Uint8Array });
      const ref = fx.f32(`${name}/${eye}/iris_raw`);
      let worst = 0;
      for (let i = 0; i < 15; i++) worst = Math.max(worst, Math.abs(raw[i]! - ref[i]!));
      assert.ok(worst <= TOL, `${name} ${eye}: max |diff| ${worst} (LiteRT's own kernels differ by ${fx.f32(`${name}/${eye}/spread`)[0]})`);
    }
  }
});

test('iris points decoded (unflipped for the right eye) and projected through the ROI as MediaPipe does', () => {
  for (const name of CASES) {
    for (const [eye, , flip] of EYES) {
      const r = fx.f32(`${name}/${eye}/roi`);
      const roi = { cx: r[0]!, cy: r[1]!, w: r[2]!, h: r[3]!, rotation: r[4]! };
      const pts = decodeIris(fx.f32(`${name}/${eye}/iris_raw`), flip, Array.from(fx.f32(`${name}/${eye}/pad`)), roi);
      const ref = fx.f32(`${name}/${eye}/iris`);
      pts.forEach((p, i) => {
        assert.ok(Math.abs(p.x - ref[2 * i]!) < 1e-6 && Math.abs(p.y - ref[2 * i + 1]!) < 1e-6, `${name} ${eye} point ${i}`);
      });
    }
  }
});

test('withIris end to end on the fixture images: 478 points, pupil centres where the oracle puts them', async () => {
  const session = await mediapipeSession('iris_landmark');
  for (const name of CASES) {
    const img = await image(name);
    const face = await withIris(img, faceWithCorners(name), session);
    assert.equal(face.length, 478);
    for (const [eye, k] of [['left', 468], ['right', 473]] as const) {
      const ref = fx.f32(`${name}/${eye}/iris`);
      const d = Math.hypot((face[k]!.x - ref[0]!) * img.width, (face[k]!.y - ref[1]!) * img.height);
      // the same model input, so only the model's 1e-4 (in 64-pixel units) remains, scaled by crop side / 64
      // (under 1.5 here), plus float32 rounding of the fixture: 1e-3 px bounds it
      assert.ok(d < 1e-3, `${name} ${eye} pupil ${d.toExponential(2)} px from the oracle's`);
    }
  }
});
