// auto_hint out of the box: with an empty models folder, face_detector and openpose run on the MediaPipe models
// bundled in the npm dependencies, on a real public-domain photo (scikit-image's astronaut, Eileen Collins,
// NASA; tests/fixtures/photos/README.md). The checks are positions: the face mesh lies on the face, the
// skeleton's joints on the body. The regions below were read off the photo by hand (normalized coordinates):
// face (hairline to chin, ear to ear) x 0.30..0.58, y 0.05..0.40; shoulders at y 0.38..0.56.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { annotate, annotatorNote, annotatorStatus, releaseAnnotatorSessions } from '../../../src/engine/annotators/index.ts';
import { mediapipeSession } from '../../../src/engine/annotators/mediapipe-models.ts';
import { detectFaces } from '../../../src/engine/annotators/neural/face.ts';
import { detectBodies } from '../../../src/engine/annotators/neural/mediapipe-pose.ts';
import type { RgbImage } from '../../../src/engine/pipeline/types.ts';
import { FIXTURES, loadFixture } from '../../support/fixtures.ts';

const FACE = { x0: 0.30, x1: 0.58, y0: 0.05, y1: 0.40 };
const inFace = (p: { x: number; y: number }) => p.x >= FACE.x0 && p.x <= FACE.x1 && p.y >= FACE.y0 && p.y <= FACE.y1;

let dir: string;
let photo: RgbImage;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bundled-annotators-'));
  const { data, info } = await sharp(readFileSync(join(FIXTURES, 'photos/astronaut-256.png'))).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  photo = { width: info.width, height: info.height, data: new Uint8Array(data) };
});
after(async () => {
  await releaseAnnotatorSessions();
  await rm(dir, { recursive: true, force: true });
});

/** Bounding box (normalized) of the hint's non-black pixels, and their count. */
function drawnBox(h: RgbImage): { x0: number; x1: number; y0: number; y1: number; n: number } {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity, n = 0;
  for (let y = 0; y < h.height; y++) for (let x = 0; x < h.width; x++) {
    const i = (y * h.width + x) * 3;
    if (h.data[i]! + h.data[i + 1]! + h.data[i + 2]! === 0) continue;
    n++;
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  return { x0: x0 / h.width, x1: (x1 + 1) / h.width, y0: y0 / h.height, y1: (y1 + 1) / h.height, n };
}

test('face_detector with no model installed: one face, all 468 landmarks on the face, nose below the eyes and above the mouth', async () => {
  const faces = await detectFaces(photo, await mediapipeSession('face_detection_short_range'), await mediapipeSession('face_landmark'));
  assert.equal(faces.length, 1);
  const f = faces[0]!;
  assert.equal(f.length, 468, 'no iris model given: no iris points');
  assert.ok(f.every(inFace), 'every landmark inside the face region');
  const xs = f.map((p) => p.x), ys = f.map((p) => p.y);
  assert.ok(Math.max(...xs) - Math.min(...xs) > 0.12, 'the mesh spans the face, not a point');
  // MediaPipe mesh indices: 1 nose tip, 159 / 386 upper eyelids, 13 upper lip, 152 chin
  assert.ok(f[159]!.y < f[1]!.y && f[386]!.y < f[1]!.y, 'eyes above the nose tip');
  assert.ok(f[1]!.y < f[13]!.y && f[13]!.y < f[152]!.y, 'nose above the mouth above the chin');
  assert.ok(f[159]!.x < f[386]!.x, "the subject's right eye on the image's left");
});

test('face_detector pupils from the iris model: 468 and 473 inside each eye, near where MediaPipe FaceMesh(refine_landmarks=True) puts them', async () => {
  const faces = await detectFaces(photo, await mediapipeSession('face_detection_short_range'), await mediapipeSession('face_landmark'), await mediapipeSession('iris_landmark'));
  assert.equal(faces.length, 1);
  const f = faces[0]!;
  assert.equal(f.length, 478);
  const W = photo.width, H = photo.height;
  const px = (p: { x: number; y: number }) => ({ x: p.x * W, y: p.y * H });
  // tools/oracle/mediapipe_iris_reference.py: mediapipe 0.10.14's own FaceMesh on the same photo, in pixels
  const mp = loadFixture('annotators/iris_mediapipe');
  const mpIris = mp.f32('refined_iris_px');
  for (const [pupil, [outer, inner]] of [[468, [33, 133]], [473, [263, 362]]] as const) {
    const p = px(f[pupil]!), a = px(f[outer]!), b = px(f[inner]!);
    // inside the eye: between the corners along the eye's axis, and within a fifth of the eye's width of it
    const ux = b.x - a.x, uy = b.y - a.y, len = Math.hypot(ux, uy);
    const along = ((p.x - a.x) * ux + (p.y - a.y) * uy) / (len * len);
    const across = Math.abs((p.x - a.x) * uy - (p.y - a.y) * ux) / len;
    assert.ok(along > 0.2 && along < 0.8, `pupil ${pupil} at ${along.toFixed(2)} of the way from corner ${outer} to ${inner}`);
    assert.ok(across < 0.2 * len, `pupil ${pupil} ${across.toFixed(2)} px off the eye's axis (eye ${len.toFixed(1)} px wide)`);
    // within the iris MediaPipe finds: its centre's distance to ours under its iris radius (mean of points 1..4)
    const k = pupil - 468;
    const c = { x: mpIris[2 * k]!, y: mpIris[2 * k + 1]! };
    let radius = 0;
    for (let j = 1; j <= 4; j++) radius += Math.hypot(mpIris[2 * (k + j)]! - c.x, mpIris[2 * (k + j) + 1]! - c.y) / 4;
    const d = Math.hypot(p.x - c.x, p.y - c.y);
    assert.ok(d < radius, `pupil ${pupil} ${d.toFixed(2)} px from MediaPipe's (iris radius ${radius.toFixed(2)} px)`);
  }
  // the iris edge points surround the centre (MediaPipe's order: centre, then four around it)
  for (const base of [468, 473]) {
    const c = f[base]!;
    const xs = [1, 2, 3, 4].map((j) => f[base + j]!.x - c.x), ys = [1, 2, 3, 4].map((j) => f[base + j]!.y - c.y);
    assert.ok(Math.min(...xs) < 0 && Math.max(...xs) > 0 && Math.min(...ys) < 0 && Math.max(...ys) > 0, `iris ${base} edge points surround its centre`);
  }
});

test('face_detector through annotate (512x512, an empty models folder): the mesh is drawn on the face only, and meta says bundled', async () => {
  const hint = await annotate('face_detector', photo, { width: 512, height: 512, modelsDir: dir });
  const b = drawnBox(hint);
  assert.ok(b.n > 500, `mesh drawn (${b.n} pixels)`);
  assert.ok(b.x0 >= FACE.x0 && b.x1 <= FACE.x1 && b.y0 >= FACE.y0 && b.y1 <= FACE.y1, `drawn box ${JSON.stringify(b)} inside the face`);
  assert.match(annotatorNote('face_detector', dir)!, /bundled MediaPipe.*pupils from iris_landmark/);
  // the pupils are drawn: draw_pupils' colours (BGR (10, 200, 250) at 468 and (250, 200, 10) at 473, as RGB)
  const count = (r: number, g: number, b: number) => {
    let n = 0;
    for (let i = 0; i < hint.data.length; i += 3) if (hint.data[i] === r && hint.data[i + 1] === g && hint.data[i + 2] === b) n++;
    return n;
  };
  assert.ok(count(250, 200, 10) > 0 && count(10, 200, 250) > 0, 'both pupils drawn');
});

test('openpose with no model installed: MediaPipe pose gives one person with head, neck and shoulders where the photo has them', async () => {
  const people = await detectBodies(photo, await mediapipeSession('pose_detection'), await mediapipeSession('pose_landmark_full'));
  assert.equal(people.length, 1);
  const [nose, neck, rShoulder, rElbow, , lShoulder] = people[0]!.body;
  const rEye = people[0]!.body[14], lEye = people[0]!.body[15];
  assert.ok(nose && neck && rShoulder && lShoulder && rEye && lEye, 'head, neck and both shoulders visible');
  assert.ok(inFace(nose) && inFace(rEye) && inFace(lEye), 'nose and eyes on the face');
  assert.ok(rEye.x < lEye.x && rEye.y < nose.y && lEye.y < nose.y, 'eyes above the nose, right eye on the left');
  for (const s of [rShoulder, lShoulder, neck]) assert.ok(s.y >= 0.38 && s.y <= 0.56, `shoulder line at y ${s.y}`);
  assert.ok(rShoulder.x < neck.x && neck.x < lShoulder.x, 'neck between the shoulders');
  assert.ok(lShoulder.x - rShoulder.x > 0.25, 'shoulders a body width apart');
  assert.ok(nose.y < neck.y, 'head above the neck');
  assert.ok(rElbow && rElbow.y > rShoulder.y, 'right elbow below the right shoulder');
  assert.equal(people[0]!.hands.length, 0);
  assert.equal(people[0]!.face.length, 0);
});

test('openpose through annotate (an empty models folder): the skeleton is drawn over the body, and meta names the MediaPipe approximation', async () => {
  const hint = await annotate('openpose', photo, { width: 512, height: 512, modelsDir: dir });
  const b = drawnBox(hint);
  assert.ok(b.n > 2000, `skeleton drawn (${b.n} pixels)`);
  assert.ok(b.y0 >= FACE.y0 && b.y0 <= FACE.y1, 'the skeleton starts at the head');
  assert.ok(b.y1 > 0.56, 'and reaches below the shoulders');
  const note = annotatorNote('openpose', dir)!;
  assert.match(note, /MediaPipe pose.*body-only approximation/);
  assert.match(note, /install DWPose/);
});

test('the algorithmic types and scribble (canny fallback) make their hint of the photo with an empty models folder', async () => {
  for (const t of ['canny', 'shuffle', 'tile', 'scribble', 'qrcode', 'inpaint'] as const) {
    const hint = await annotate(t, photo, { width: 320, height: 256, modelsDir: dir, seed: 1 });
    assert.equal(hint.width, 320, t);
    assert.equal(hint.height, 256, t);
    assert.ok(drawnBox(hint).n > 1000, `${t} draws something`);
  }
});

test('annotator status per type with an empty models folder: algorithmic, bundled, fallback and missing (with relative files and where to get them)', () => {
  const st = Object.fromEntries(annotatorStatus(dir).map((s) => [s.type, s]));
  assert.equal(Object.keys(st).length, 15);
  for (const t of ['canny', 'shuffle', 'tile', 'qrcode', 'inpaint']) assert.equal(st[t]!.state, 'algorithm', t);
  assert.equal(st.face_detector!.state, 'bundled');
  assert.match(st.face_detector!.uses.join(' '), /@mediapipe\/face_mesh/);
  assert.equal(st.openpose!.state, 'bundled');
  assert.deepEqual(st.openpose!.missing, ['annotator/dwpose/yolox_l.onnx', 'annotator/dwpose/dw-ll_ucoco_384.onnx']);
  assert.equal(st.scribble!.state, 'fallback');
  assert.equal(st.depth!.state, 'missing');
  // depth names the MiDaS checkpoint ControlNet 1.1 uses, with Depth Anything's ONNX model as the alternative
  assert.deepEqual(st.depth!.missing, ['annotator/midas/dpt_hybrid-midas-501f0c75.pt']);
  assert.match(st.depth!.howToGet!, /^hf:lllyasviel\/Annotators dpt_hybrid-midas-501f0c75\.pt .*onnx-community\/depth-anything-v2-small.*licence: MIT \(isl-org\/MiDaS\) \(the ONNX model: Apache-2\.0\)$/);
  for (const s of Object.values(st)) assert.ok(!JSON.stringify(s).includes(dir), 'no server path');
});
