// annotate() end to end: tiny ONNX models with the real models' input/output signatures, written into a
// temporary models folder, check the plumbing (file lookup, pre-processing, the run, post-processing).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GraphBuilder, type Value } from '../../../src/engine/onnx/graph.ts';
import { writeModel } from '../../../src/engine/onnx/serialize.ts';
import { AnnotatorMissingError, annotate, annotatorModel, annotatorNote, releaseAnnotatorSessions } from '../../../src/engine/annotators/index.ts';
import { canny } from '../../../src/engine/annotators/canny.ts';
import { ADE20K_PALETTE } from '../../../src/engine/annotators/neural/ade20k.ts';
import { drawPose } from '../../../src/engine/annotators/pose-draw.ts';
import { drawFaces } from '../../../src/engine/annotators/face-draw.ts';
import { mediapipeSession } from '../../../src/engine/annotators/mediapipe-models.ts';
import { withIris } from '../../../src/engine/annotators/neural/iris.ts';
import { loadFixture } from '../../support/fixtures.ts';
import { CONTROLNET_TYPES, type ControlNetType, type RgbImage } from '../../../src/engine/pipeline/types.ts';
import { equalFraction, firstChannel, nonZero } from './agreement.ts';

let dir = '';
before(async () => { dir = await mkdtemp(join(tmpdir(), 'annotators-')); });
after(async () => {
  await releaseAnnotatorSessions();
  await rm(dir, { recursive: true, force: true });
});

async function install(type: ControlNetType, build: (file: string) => GraphBuilder, index = 0): Promise<void> {
  const rel = annotatorModel(type)!.files[index]!;
  const path = join(dir, 'annotator', rel);
  await mkdir(join(path, '..'), { recursive: true });
  await writeModel(build(rel), path, { externalThreshold: Infinity });
}

function image(w: number, h: number, px: (x: number, y: number) => [number, number, number]): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set(px(x, y), (y * w + x) * 3);
  return { width: w, height: h, data };
}

const at = (img: RgbImage, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
const mean = (g: GraphBuilder, x: Value, keep = 1) => g.op('ReduceMean', [x, g.i64([1])], { keepdims: keep });
/** A constant output of the given shape that still depends on the input (ONNX Runtime needs a path from it). */
function constLike(g: GraphBuilder, x: Value, data: Float32Array, dims: number[]): Value {
  const zero = g.op('Mul', [g.op('ReduceMean', [x, g.i64([1, 2, 3])], { keepdims: 0 }), g.scalar(0)]);
  return g.op('Add', [g.f32(data, dims), zero]);
}

test('every type: algorithmic ones need no model, neural ones name their files, source and licence', () => {
  for (const t of CONTROLNET_TYPES) {
    const m = annotatorModel(t);
    if (['canny', 'shuffle', 'tile', 'inpaint', 'qrcode'].includes(t)) assert.equal(m, null, t);
    else {
      assert.ok(m && m.files.length > 0 && m.source.length > 0 && m.licence.length > 0, t);
      for (const f of m!.files) assert.match(f, /^[a-z0-9-]+\/[\w.-]+\.onnx$/, `${t}: ${f}`);
    }
  }
});

test('a neural type without its model (and without a bundled one) throws AnnotatorMissingError naming the file relative to the models folder and where to get it', async () => {
  const img = image(32, 32, () => [1, 2, 3]);
  for (const t of ['depth', 'normal', 'hed', 'softedge', 'lineart', 'mlsd', 'segmentation'] as const) {
    const empty = join(dir, 'empty');
    await assert.rejects(annotate(t, img, { width: 32, height: 32, modelsDir: empty }), (e: unknown) => {
      assert.ok(e instanceof AnnotatorMissingError, `${t}: ${e}`);
      assert.equal(e.type, t);
      const m = annotatorModel(t)!;
      // types built from their original checkpoint name it first, and the ONNX export as the alternative
      assert.equal(e.file, `annotator/${m.checkpoint?.file ?? m.files[0]!}`);
      assert.ok(e.message.includes(e.file));
      assert.ok(e.message.includes(`get it from ${m.checkpoint?.source ?? m.source}`), e.message);
      if (m.checkpoint) assert.ok(e.message.includes(`or the ONNX export annotator/${m.files[0]!}`), e.message);
      assert.ok(!e.message.includes(dir), 'no server path in the message');
      return true;
    });
  }
});

test('canny through annotate resizes to the output size first', async () => {
  const fx = loadFixture('annotators/canny').get('noise128x96/image');
  const img = { width: 128, height: 96, data: fx.data as Uint8Array };
  const same = await annotate('canny', img, { width: 128, height: 96, modelsDir: dir });
  assert.deepEqual(same.data, canny(img).data);
  const small = await annotate('canny', img, { width: 64, height: 48, modelsDir: dir });
  assert.equal(small.width, 64);
  assert.equal(small.data.length, 64 * 48 * 3);
});

test('tile keeps the layout and drops the detail; qrcode is black and white; shuffle follows the seed', async () => {
  const img = image(64, 64, (x, y) => ((x >> 3) + (y >> 3)) % 2 ? [250, 250, 250] : [5, 5, 5]);
  const t = await annotate('tile', img, { width: 64, height: 64, modelsDir: dir });
  assert.ok(Math.abs(at(t, 4, 4)[0]! - 5) < 60 && Math.abs(at(t, 12, 4)[0]! - 250) < 60, 'coarse layout kept');
  let blurred = 0;
  for (let i = 0; i < t.data.length; i++) if (t.data[i]! > 40 && t.data[i]! < 215) blurred++;
  assert.ok(blurred > 0.1 * t.data.length, 'edges are soft after down/up sampling');
  const q = await annotate('qrcode', img, { width: 64, height: 64, modelsDir: dir });
  assert.ok(q.data.every((v) => v === 0 || v === 255));
  const a = await annotate('shuffle', img, { width: 64, height: 64, modelsDir: dir, seed: 5 });
  const b = await annotate('shuffle', img, { width: 64, height: 64, modelsDir: dir, seed: 5 });
  assert.deepEqual(a.data, b.data);
});

test('inpaint blacks out the masked pixels in its preview; without a mask it is the image', async () => {
  const img = image(16, 16, () => [100, 150, 200]);
  assert.deepEqual((await annotate('inpaint', img, { width: 16, height: 16, modelsDir: dir })).data, img.data);
  const mask = image(16, 16, (x) => (x < 8 ? [255, 255, 255] : [0, 0, 0]));
  const p = await annotate('inpaint', img, { width: 16, height: 16, modelsDir: dir, mask });
  assert.deepEqual(at(p, 2, 2), [0, 0, 0]);
  assert.deepEqual(at(p, 12, 2), [100, 150, 200]);
});

test('scribble without the HED model falls back to canny strokes, and says so', async () => {
  const img = image(48, 48, (x) => (x < 24 ? [0, 0, 0] : [255, 255, 255]));
  const s = await annotate('scribble', img, { width: 48, height: 48, modelsDir: join(dir, 'none') });
  assert.ok(nonZero(firstChannel(s.data)) > 48 * 4, 'a thick stroke along the edge');
  assert.equal(at(s, 2, 20)[0], 0);
  assert.match(annotatorNote('scribble', join(dir, 'none'))!, /canny/);
});

test('depth: Depth Anything signature, min-max normalized, brighter where the model says nearer', async () => {
  await install('depth', () => {
    const g = new GraphBuilder('depth');
    const x = g.input('pixel_values', 'float32', [1, 3, 'h', 'w']);
    g.output(mean(g, x, 0), 'predicted_depth', 'float32', [1, 'h', 'w']);
    return g;
  });
  const img = image(40, 24, (x) => [x * 6, x * 6, x * 6]);
  const d = await annotate('depth', img, { width: 40, height: 24, modelsDir: dir });
  assert.equal(d.width, 40);
  assert.ok(at(d, 0, 12)[0]! < 10 && at(d, 39, 12)[0]! > 245, `${at(d, 0, 12)} .. ${at(d, 39, 12)}`);
  for (let x = 1; x < 40; x++) assert.ok(at(d, x, 12)[0]! >= at(d, x - 1, 12)[0]!, 'monotone');
});

test('normal: NormalBae signature (ImageNet-normalized RGB in, 4 channels out) mapped to RGB', async () => {
  await install('normal', () => {
    const g = new GraphBuilder('normal');
    const x = g.input('x', 'float32', [1, 3, 'h', 'w']);
    g.output(g.op('Concat', [x, mean(g, x)], { axis: 1 }), 'normal', 'float32', [1, 4, 'h', 'w']);
    return g;
  });
  const n = await annotate('normal', image(24, 16, () => [128, 64, 200]), { width: 24, height: 16, modelsDir: dir });
  const expect = [128, 64, 200].map((v, c) => {
    const z = Math.fround((v / 255 - [0.485, 0.456, 0.406][c]!) / [0.229, 0.224, 0.225][c]!);
    return Math.trunc(Math.min(1, Math.max(0, (z + 1) * 0.5)) * 255);
  });
  for (const [px, py] of [[0, 0], [12, 8], [23, 15]] as const) {
    at(n, px, py).forEach((v, c) => assert.ok(Math.abs(v - expect[c]!) <= 1, `${v} vs ${expect[c]}`));
  }
});

test('hed: five side outputs at 1/1 .. 1/16 scale, averaged and squashed', async () => {
  await install('hed', () => {
    const g = new GraphBuilder('hed');
    const x = g.input('x', 'float32', [1, 3, 'h', 'w']);
    let s = g.op('Sub', [g.op('Mul', [mean(g, x), g.scalar(0.01)]), g.scalar(1)]);
    for (let k = 0; k < 5; k++) {
      g.output(s, `p${k}`, 'float32', [1, 1, '?', '?']);
      s = g.op('MaxPool', [s], { kernel_shape: [2, 2], strides: [2, 2] });
    }
    return g;
  });
  const h = await annotate('hed', image(32, 32, () => [200, 200, 200]), { width: 32, height: 32, modelsDir: dir });
  const expect = Math.trunc((1 / (1 + Math.exp(-(200 * 0.01 - 1)))) * 255);
  assert.ok(Math.abs(at(h, 16, 16)[0]! - expect) <= 1, `${at(h, 16, 16)} vs ${expect}`);
});

test('softedge: PiDiNet reads BGR in 0..1 and its last output is the edge map', async () => {
  await install('softedge', () => {
    const g = new GraphBuilder('pidinet');
    const x = g.input('x', 'float32', [1, 3, 'h', 'w']);
    const first = g.op('Conv', [x, g.f32([1, 0, 0], [1, 3, 1, 1])]); // channel 0 = blue when the input is BGR
    g.output(g.op('Sigmoid', [mean(g, x)]), 'side', 'float32', [1, 1, 'h', 'w']);
    g.output(g.op('Sigmoid', [first]), 'fused', 'float32', [1, 1, 'h', 'w']);
    return g;
  });
  const s = await annotate('softedge', image(16, 16, () => [0, 0, 255]), { width: 16, height: 16, modelsDir: dir });
  assert.equal(at(s, 8, 8)[0], Math.trunc((1 / (1 + Math.exp(-1))) * 255));
});

test('lineart: RGB 0..1 in, dark lines out, inverted to white on black', async () => {
  await install('lineart', () => {
    const g = new GraphBuilder('lineart');
    const x = g.input('x', 'float32', [1, 3, 'h', 'w']);
    g.output(mean(g, x), 'line', 'float32', [1, 1, 'h', 'w']);
    return g;
  });
  const l = await annotate('lineart', image(16, 16, () => [255, 255, 0]), { width: 16, height: 16, modelsDir: dir });
  assert.equal(at(l, 4, 4)[0], 255 - Math.trunc(Math.fround(2 / 3) * 255));
});

test('segmentation: 512x512 ImageNet-normalized input, logits at 1/4 size, ADE20k colors', async () => {
  await install('segmentation', () => {
    const g = new GraphBuilder('seg');
    const x = g.input('pixel_values', 'float32', [1, 3, 512, 512]);
    const w = new Float32Array(150 * 3);
    w[5 * 3 + 0] = 1; // class 5 follows red
    w[7 * 3 + 2] = 1; // class 7 follows blue
    const logits = g.op('Conv', [x, g.f32(w, [150, 3, 1, 1])]);
    g.output(g.op('AveragePool', [logits], { kernel_shape: [4, 4], strides: [4, 4] }), 'logits', 'float32', [1, 150, 128, 128]);
    return g;
  });
  const s = await annotate('segmentation', image(32, 16, (x) => (x < 16 ? [255, 0, 0] : [0, 0, 255])), { width: 32, height: 16, modelsDir: dir });
  assert.deepEqual(at(s, 3, 8), Array.from(ADE20K_PALETTE.subarray(15, 18)));
  assert.deepEqual(at(s, 28, 8), Array.from(ADE20K_PALETTE.subarray(21, 24)));
});

test('mlsd: 4-channel input, tpMap at half size decoded into white lines', async () => {
  await install('mlsd', () => {
    const g = new GraphBuilder('mlsd');
    const x = g.input('x', 'float32', [1, 4, 'h', 'w']);
    const half = g.op('AveragePool', [x], { kernel_shape: [2, 2], strides: [2, 2] });
    // every centre scores sigmoid(3) and carries a horizontal segment from x-5 to x+5
    const w = new Float32Array(9 * 4), b = Float32Array.of(3, -5, 0, 5, 0, 0, 0, 0, 0);
    g.output(g.op('Conv', [half, g.f32(w, [9, 4, 1, 1]), g.f32(b, [9])]), 'tpmap', 'float32', [1, 9, 'h2', 'w2']);
    return g;
  });
  const m = await annotate('mlsd', image(64, 64, () => [9, 9, 9]), { width: 64, height: 64, modelsDir: dir });
  // the 200 best (all equal) centres are the first rows of the 32x32 map: lines on image rows 0, 2, .., 12
  assert.equal(at(m, 30, 2)[0], 255);
  assert.equal(at(m, 30, 40)[0], 0);
});

test('openpose: YOLOX person box and DWPose SimCC keypoints drawn as the openpose hint', async () => {
  const anchors = 80 * 80 + 40 * 40 + 20 * 20;
  await install('openpose', () => {
    const g = new GraphBuilder('yolox');
    const x = g.input('images', 'float32', [1, 3, 640, 640]);
    const d = new Float32Array(anchors * 85);
    const cell = 80 * 80 + 40 * 40 + 6 * 20 + 5; // stride 32, gx 5, gy 6
    d.set([0, 0, Math.log(4), Math.log(8), 1, 1], cell * 85);
    g.output(constLike(g, x, d, [1, anchors, 85]), 'output', 'float32', [1, anchors, 85]);
    return g;
  }, 0);
  const bx = (j: number) => 100 + 3 * j, by = (j: number) => 200 + 3 * (j % 60);
  await install('openpose', () => {
    const g = new GraphBuilder('dwpose');
    const x = g.input('input', 'float32', [1, 3, 384, 288]);
    const sx = new Float32Array(133 * 576), sy = new Float32Array(133 * 768);
    for (let j = 0; j < 133; j++) {
      sx[j * 576 + bx(j)] = 0.9;
      sy[j * 768 + by(j)] = 0.8;
    }
    g.output(constLike(g, x, sx, [1, 133, 576]), 'simcc_x', 'float32', [1, 133, 576]);
    g.output(constLike(g, x, sy, [1, 133, 768]), 'simcc_y', 'float32', [1, 133, 768]);
    return g;
  }, 1);
  const W = 128, H = 128;
  // DWPose installed: preferred over the bundled MediaPipe pose, and no approximation note
  assert.equal(annotatorNote('openpose', dir), undefined);
  const hint = await annotate('openpose', image(W, H, () => [90, 90, 90]), { width: W, height: H, modelsDir: dir });
  // box in the 640 letterbox: centre (160, 192), size 128 x 256; the image is scaled by 5
  const r = 5, cx = 160 / r, cy = 192 / r, sw0 = (128 / r) * 1.25, sh0 = (256 / r) * 1.25;
  const sh = Math.max(sh0, sw0 / 0.75), sw = sh * 0.75;
  const px = (j: number): [number, number] => [(bx(j) / 2 / 288) * sw + cx - sw / 2, (by(j) / 2 / 384) * sh + cy - sh / 2];
  const kp = Array.from({ length: 133 }, (_, j) => px(j));
  const neck: [number, number] = [(kp[5]![0] + kp[6]![0]) / 2, (kp[5]![1] + kp[6]![1]) / 2];
  const all = [...kp.slice(0, 17), neck, ...kp.slice(17)];
  const order = [0, 17, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3];
  const norm = ([x, y]: [number, number]) => ({ x: x / W, y: y / H });
  const expected = drawPose([{
    body: order.map((j) => norm(all[j]!)),
    face: all.slice(24, 92).map(norm),
    hands: [all.slice(92, 113).map(norm), all.slice(113, 134).map(norm)],
  }], W, H);
  assert.ok(nonZero(expected.data) > 500);
  assert.equal(equalFraction(hint.data, expected.data), 1);
});

// BlazeFace short range: raw outputs [1,896,16] / [1,896,1]; anchor i of the 16x16 grid's cell (x, y) is
// (y * 16 + x) * 2 with centre ((x + 0.5) / 16, (y + 0.5) / 16), so a zero offset puts a box on it.
function faceDetector(faces: { cell: [number, number]; size: number; logit: number }[], logitPerMean = 0): (file: string) => GraphBuilder {
  return () => {
    const g = new GraphBuilder('blazeface');
    const x = g.input('input', 'float32', [1, 3, 128, 128]);
    const reg = new Float32Array(896 * 16), cls = new Float32Array(896).fill(-20);
    for (const f of faces) {
      const i = (f.cell[1] * 16 + f.cell[0]) * 2;
      const s = f.size * 128;
      // box centred on the anchor; eyes level (keypoints 0 and 1), nose, mouth, ears
      reg.set([0, 0, s, s, -0.2 * s, -0.15 * s, 0.2 * s, -0.15 * s, 0, 0, 0, 0.2 * s, -0.45 * s, 0, 0.45 * s, 0], i * 16);
      cls[i] = f.logit;
    }
    g.output(constLike(g, x, reg, [1, 896, 16]), 'regressors', 'float32', [1, 896, 16]);
    // logits + logitPerMean x (mean of the input tensor)
    const m = g.op('Mul', [g.op('ReduceMean', [x, g.i64([1, 2, 3])], { keepdims: 0 }), g.scalar(logitPerMean)]);
    g.output(g.op('Add', [g.f32(cls, [1, 896, 1]), m]), 'classificators', 'float32', [1, 896, 1]);
    return g;
  };
}

/**
 * Face mesh model: fixed landmarks (normalized to the crop), 478 (with iris points, as face_landmark_with_attention)
 * or 468 (as face_landmark); face logit = score + perMean x (crop mean - 0.5).
 */
function faceLandmarker(lm: Float32Array, score: number, perMean = 0, count = 478): (file: string) => GraphBuilder {
  return () => {
    const g = new GraphBuilder('face');
    const x = g.input('input', 'float32', [1, 3, 192, 192]);
    const pts = new Float32Array(count * 3);
    for (let i = 0; i < count; i++) pts.set([lm[2 * i]! * 192, lm[2 * i + 1]! * 192, 0], 3 * i);
    g.output(constLike(g, x, pts, [1, count * 3]), 'landmarks', 'float32', [1, count * 3]);
    const m = g.op('Mul', [g.op('Sub', [g.op('ReduceMean', [x, g.i64([1, 2, 3])], { keepdims: 0 }), g.scalar(0.5)]), g.scalar(perMean)]);
    g.output(g.op('Add', [g.f32(Float32Array.of(score), [1, 1]), m]), 'score', 'float32', [1, 1]);
    return g;
  };
}

async function installFace(d: string, det: (f: string) => GraphBuilder, lmk: (f: string) => GraphBuilder | null): Promise<void> {
  for (const [i, b] of [det, lmk].entries()) {
    const path = join(d, 'annotator', annotatorModel('face_detector')!.files[i]!);
    await mkdir(join(path, '..'), { recursive: true });
    await writeModel(b('')!, path, { externalThreshold: Infinity });
  }
}

// Two faces on the detector's 16x16 grid: cells (4, 4) and (11, 10), boxes 0.375 of the 128 input wide.
const TWO_FACES = [{ cell: [4, 4] as [number, number], size: 0.375, logit: 3 }, { cell: [11, 10] as [number, number], size: 0.375, logit: 2 }];

/**
 * The expected face in a W=256 x H=192 image: the letterbox square is 256 wide, centred, so tensor (u, v) is
 * image (u, (96 + (v - 0.5) * 256) / 192); the box is 96 px square, the ROI 1.5 x 96 = 144 px, upright (level
 * eyes): crop landmark l maps to ((l - 0.5) * 144 + centre) px.
 */
function expectedFace(lm: Float32Array, cell: [number, number]): { x: number; y: number }[] {
  const cx = (cell[0] + 0.5) / 16, cy = (96 + ((cell[1] + 0.5) / 16 - 0.5) * 256) / 192;
  return Array.from({ length: 478 }, (_, i) => ({
    x: (Math.fround(lm[2 * i]! * 192) / 192 - 0.5) * (144 / 256) + cx,
    y: (Math.fround(lm[2 * i + 1]! * 192) / 192 - 0.5) * (144 / 192) + cy,
  }));
}

test('face_detector: BlazeFace finds two faces in a letterboxed image, the mesh runs on each crop, both are drawn', async () => {
  const lm = loadFixture('annotators/face').f32('landmarks');
  await installFace(dir, faceDetector(TWO_FACES), faceLandmarker(lm, 4));
  const f = await annotate('face_detector', image(256, 192, () => [120, 100, 90]), { width: 256, height: 192, modelsDir: dir });
  const one = drawFaces([expectedFace(lm, [4, 4])], 256, 192);
  const expected = drawFaces([expectedFace(lm, [4, 4]), expectedFace(lm, [11, 10])], 256, 192);
  assert.ok(nonZero(one.data) > 1000 && nonZero(expected.data) > nonZero(one.data) * 1.5, 'two faces drawn');
  const eq = equalFraction(f.data, expected.data);
  assert.equal(eq, 1, `${eq}`);
  assert.equal(annotatorNote('face_detector', dir), undefined);
});

test('face_detector with an installed 468-point landmark model: the pupils come from the bundled iris model', async () => {
  const lm = loadFixture('annotators/face').f32('landmarks');
  const d = join(dir, 'mesh468');
  await installFace(d, faceDetector([TWO_FACES[0]!]), faceLandmarker(lm, 4, 0, 468));
  // a textured image, so that the iris model sees something
  const img = image(256, 192, (x, y) => [(x * 7) % 256, (y * 5) % 256, ((x + y) * 3) % 256]);
  const f = await annotate('face_detector', img, { width: 256, height: 192, modelsDir: d });
  const mesh = expectedFace(lm, TWO_FACES[0]!.cell).slice(0, 468);
  const withPupils = drawFaces([await withIris(img, mesh, await mediapipeSession('iris_landmark'))], 256, 192);
  const without = drawFaces([mesh], 256, 192);
  assert.ok(equalFraction(withPupils.data, without.data) < 1, 'the iris points add pupils to the drawing');
  assert.equal(equalFraction(f.data, withPupils.data), 1);
});

test('face_detector: the landmark model sees each face\'s own crop (0..1), the detector the image in -1..1', async () => {
  const lm = loadFixture('annotators/face').f32('landmarks');
  // left half white, right half black: face 1's crop (x 0..144 px) is mostly white, face 2's (112..256) mostly black
  const img = image(256, 192, (x) => (x < 128 ? [255, 255, 255] : [0, 0, 0]));
  const d = join(dir, 'crops');
  await installFace(d, faceDetector(TWO_FACES), faceLandmarker(lm, 0, 20));
  const f = await annotate('face_detector', img, { width: 256, height: 192, modelsDir: d });
  const eq = equalFraction(f.data, drawFaces([expectedFace(lm, [4, 4])], 256, 192).data);
  assert.equal(eq, 1, `only the face on white is kept: ${eq}`);
  // detector logit 3 + 4 x input mean: a black image is -1 everywhere in MediaPipe's [-1, 1] range (logit -1)
  const d2 = join(dir, 'range');
  await installFace(d2, faceDetector([{ cell: [8, 8], size: 0.5, logit: 3 }], 4), faceLandmarker(lm, 4));
  const black = await annotate('face_detector', image(192, 192, () => [0, 0, 0]), { width: 192, height: 192, modelsDir: d2 });
  assert.equal(nonZero(black.data), 0);
  const white = await annotate('face_detector', image(192, 192, () => [255, 255, 255]), { width: 192, height: 192, modelsDir: d2 });
  assert.ok(nonZero(white.data) > 0, 'a white image is +1 everywhere (logit 7): the face is drawn');
});

test('face_detector: no detection over 0.5, or a landmark face score under 0.5, draws nothing', async () => {
  const lm = loadFixture('annotators/face').f32('landmarks');
  const run = async (d: string) => annotate('face_detector', image(192, 192, () => [50, 60, 70]), { width: 192, height: 192, modelsDir: d });
  await installFace(join(dir, 'noface'), faceDetector([{ cell: [8, 8], size: 0.5, logit: -0.1 }]), faceLandmarker(lm, 4));
  assert.equal(nonZero((await run(join(dir, 'noface'))).data), 0);
  await installFace(join(dir, 'lowscore'), faceDetector([{ cell: [8, 8], size: 0.5, logit: 3 }]), faceLandmarker(lm, -1));
  assert.equal(nonZero((await run(join(dir, 'lowscore'))).data), 0);
  await installFace(join(dir, 'control'), faceDetector([{ cell: [8, 8], size: 0.5, logit: 3 }]), faceLandmarker(lm, 4));
  assert.ok(nonZero((await run(join(dir, 'control'))).data) > 0, 'the same models with passing scores draw');
});

test('face_detector with only one of its two ONNX files installed runs the bundled MediaPipe models instead, and says so', async () => {
  const fx = loadFixture('annotators/face');
  const [det, lmk] = annotatorModel('face_detector')!.files as [string, string];
  assert.match(det, /face_detection_short_range\.onnx$/);
  assert.match(lmk, /face_landmark\.onnx$/);
  const img = image(32, 32, () => [1, 2, 3]);
  for (const [name, present, missing, build] of [
    ['only-landmarks', lmk, det, faceLandmarker(fx.f32('landmarks'), 4)],
    ['only-detector', det, lmk, faceDetector([])],
  ] as const) {
    const d = join(dir, name);
    await mkdir(join(d, 'annotator', present, '..'), { recursive: true });
    await writeModel(build(''), join(d, 'annotator', present), { externalThreshold: Infinity });
    assert.ok(!existsSync(join(d, 'annotator', missing)));
    const hint = await annotate('face_detector', img, { width: 32, height: 32, modelsDir: d });
    assert.equal(nonZero(hint.data), 0, 'no face in a flat image');
    assert.match(annotatorNote('face_detector', d)!, /bundled MediaPipe/);
  }
});
