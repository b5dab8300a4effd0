// `models pull annotators` against a local hub: each file lands where the engine reads it, the engine then uses
// it (annotatorStatus), installed files are skipped, and segmentation's SegFormer ONNX alternative (non-commercial)
// is never fetched: segmentation pulls its original UniFormer checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ModelsFolder } from '../../src/storage/models-folder.ts';
import { ModelDownloader } from '../../src/storage/model-download.ts';
import { annotatorPullTypes, pullAnnotators } from '../../src/storage/annotator-pull.ts';
import { annotatorStatus } from '../../src/engine/annotators/models.ts';
import { startHub } from './hub-server.ts';

test('annotator pull sources: "annotators" is the default set; annotator:<types> names them; unknown types are refused', () => {
  assert.deepEqual(annotatorPullTypes('annotators'), ['hed', 'softedge', 'lineart', 'mlsd', 'normal', 'depth', 'segmentation', 'openpose']);
  assert.deepEqual(annotatorPullTypes('annotator:segmentation,hed'), ['segmentation', 'hed']);
  assert.equal(annotatorPullTypes('lllyasviel/Annotators'), null);
  assert.throws(() => annotatorPullTypes('annotator:hedd'), /unknown control type "hedd"/);
});

test('models pull annotators: every file from its hub repository into models/annotator/<name>/, then the types use them', async () => {
  const blob = (n: number) => randomBytes(n);
  const files = {
    'lllyasviel/Annotators': ['ControlNetHED.pth', 'table5_pidinet.pth', 'sk_model.pth', 'mlsd_large_512_fp32.pth', 'scannet.pt', 'dpt_hybrid-midas-501f0c75.pt', 'upernet_global_small.pth'].map((name) => ({ name, data: blob(1000), lfs: true })),
    'yzd-v/DWPose': [{ name: 'yolox_l.onnx', data: blob(300) }, { name: 'dw-ll_ucoco_384.onnx', data: blob(300) }],
  };
  const hub = await startHub(files);
  const dir = mkdtempSync(join(tmpdir(), 'annotator-pull-'));
  try {
    const dl = new ModelDownloader(new ModelsFolder(dir), { hfEndpoint: hub.url, fetch: { allow: ['127.0.0.1'] } });
    const got = await pullAnnotators(dl, dir, annotatorPullTypes('annotators')!);
    assert.deepEqual(got.map((f) => f.dest).sort(), [
      'annotator/dwpose/dw-ll_ucoco_384.onnx', 'annotator/dwpose/yolox_l.onnx',
      'annotator/hed/ControlNetHED.pth', 'annotator/lineart/sk_model.pth', 'annotator/midas/dpt_hybrid-midas-501f0c75.pt', 'annotator/mlsd/mlsd_large_512_fp32.pth',
      'annotator/normalbae/scannet.pt', 'annotator/pidinet/table5_pidinet.pth', 'annotator/uniformer/upernet_global_small.pth',
    ]);
    // depth's checkpoint lands in its own folder under its own licence
    assert.equal(got.find((f) => f.type === 'depth')!.licence, 'MIT (isl-org/MiDaS)');
    // segmentation's checkpoint too (the SegFormer ONNX model is not fetched)
    assert.match(got.find((f) => f.type === 'segmentation')!.licence, /^Apache-2\.0/);
    assert.deepEqual(readFileSync(join(dir, 'annotator/hed/ControlNetHED.pth')), files['lllyasviel/Annotators'][0]!.data);
    assert.deepEqual(readFileSync(join(dir, 'annotator/midas/dpt_hybrid-midas-501f0c75.pt')), files['lllyasviel/Annotators'][5]!.data);
    const st = Object.fromEntries(annotatorStatus(dir).map((s) => [s.type, s.state]));
    assert.deepEqual([st.hed, st.scribble, st.softedge, st.lineart, st.mlsd, st.normal, st.depth, st.segmentation, st.openpose],
      ['checkpoint', 'checkpoint', 'checkpoint', 'checkpoint', 'checkpoint', 'checkpoint', 'checkpoint', 'checkpoint', 'installed']);
    // a second pull downloads nothing
    const before = hub.requests.length;
    assert.ok((await pullAnnotators(dl, dir, annotatorPullTypes('annotators')!)).every((f) => f.bytes === 0));
    assert.equal(hub.requests.length, before);
    // a repository file that is not there fails naming it
    const bare = await startHub({});
    try {
      const dl2 = new ModelDownloader(new ModelsFolder(dir), { hfEndpoint: bare.url, fetch: { allow: ['127.0.0.1'] } });
      rmSync(join(dir, 'annotator/uniformer'), { recursive: true });
      await assert.rejects(pullAnnotators(dl2, dir, ['segmentation']), /upernet_global_small\.pth: HTTP 404/);
    } finally {
      bare.close();
    }
  } finally {
    hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
