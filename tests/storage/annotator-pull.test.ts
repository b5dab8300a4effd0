// `models pull annotators` against a local hub: each file lands where the engine reads it, the engine then uses
// it (annotatorStatus), installed files are skipped, and the non-commercial segmentation model is fetched only
// when named.
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

test('annotator pull sources: "annotators" is the default set without segmentation; annotator:<types> names them; unknown types are refused', () => {
  assert.deepEqual(annotatorPullTypes('annotators'), ['hed', 'softedge', 'lineart', 'mlsd', 'normal', 'depth', 'openpose']);
  assert.deepEqual(annotatorPullTypes('annotator:segmentation,hed'), ['segmentation', 'hed']);
  assert.equal(annotatorPullTypes('lllyasviel/Annotators'), null);
  assert.throws(() => annotatorPullTypes('annotator:hedd'), /unknown control type "hedd"/);
});

test('models pull annotators: every file from its hub repository into models/annotator/<name>/, then the types use them', async () => {
  const blob = (n: number) => randomBytes(n);
  const files = {
    'lllyasviel/Annotators': ['ControlNetHED.pth', 'table5_pidinet.pth', 'sk_model.pth', 'mlsd_large_512_fp32.pth', 'scannet.pt', 'dpt_hybrid-midas-501f0c75.pt'].map((name) => ({ name, data: blob(1000), lfs: true })),
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
      'annotator/normalbae/scannet.pt', 'annotator/pidinet/table5_pidinet.pth',
    ]);
    // depth's checkpoint lands in its own folder under its own licence
    assert.equal(got.find((f) => f.type === 'depth')!.licence, 'MIT (isl-org/MiDaS)');
    assert.deepEqual(readFileSync(join(dir, 'annotator/hed/ControlNetHED.pth')), files['lllyasviel/Annotators'][0]!.data);
    assert.deepEqual(readFileSync(join(dir, 'annotator/midas/dpt_hybrid-midas-501f0c75.pt')), files['lllyasviel/Annotators'][5]!.data);
    const st = Object.fromEntries(annotatorStatus(dir).map((s) => [s.type, s.state]));
    assert.deepEqual([st.hed, st.scribble, st.softedge, st.lineart, st.mlsd, st.normal, st.depth, st.openpose],
      ['checkpoint', 'checkpoint', 'checkpoint', 'checkpoint', 'checkpoint', 'checkpoint', 'checkpoint', 'installed']);
    assert.equal(st.segmentation, 'missing', 'not pulled by default (non-commercial licence)');
    // a second pull downloads nothing
    const before = hub.requests.length;
    assert.ok((await pullAnnotators(dl, dir, annotatorPullTypes('annotators')!)).every((f) => f.bytes === 0));
    assert.equal(hub.requests.length, before);
    // a repository file that is not there fails naming it
    await assert.rejects(pullAnnotators(dl, dir, ['segmentation']), /onnx\/model\.onnx: HTTP 404/);
  } finally {
    hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
