"""Golden outputs of the MediaPipe TFLite models bundled through npm (@mediapipe/face_detection, face_mesh, pose),
run by Google's LiteRT interpreter (ai-edge-litert, the successor of tflite-runtime: same kernels; tflite-runtime
2.14 cannot load under numpy 2), single thread, no delegate (reference-grade builtin kernels).

Two inputs per model, both reproducible in TypeScript without sharing pixels:
  pattern: x[i] = ((i * 7919 + 13) % 2001) / 1000 - 1 over the NHWC input (exact in float32)
  photo:   tests/fixtures/photos/astronaut-256.png, nearest-sampled to the input size (src = floor(dst * 256 / S)),
           scaled to the model's range ([-1,1] for detectors, [0,1] for landmark models)
Tolerance evidence: LiteRT's own kernel sets disagree in float32 rounding on these deep networks (outputs up to
~1500 in magnitude). Each input is also run with the XNNPACK delegate (AUTO) and the reference kernels
(BUILTIN_REF); the largest pairwise |diff| among the three runs is stored per output as `<key>/spread`, and the
TS test allows max(1e-4, spread): an imported graph must agree with LiteRT as closely as LiteRT agrees with itself.
Outputs over 4096 values are stored subsampled (every 31st value) to keep the fixture small; the TS test
compares the same indices. Writes tests/fixtures/annotators/tflite_models.{json,bin}.
"""
import os, re
import numpy as np
import cv2
from ai_edge_litert import interpreter as litert
from common import ROOT, save_fixture

NM = os.path.join(ROOT, 'node_modules', '@mediapipe')
STRIDE = 31
LIMIT = 4096


def packed(pkg, loader, data, name):
    js = open(os.path.join(NM, pkg, loader)).read()
    m = re.search(r'"filename": "[^"]*/' + re.escape(name) + r'", "start": (\d+), "end": (\d+)', js)
    b = open(os.path.join(NM, pkg, data), 'rb').read()
    return b[int(m.group(1)):int(m.group(2))]


def plain(pkg, name):
    return open(os.path.join(NM, pkg, name), 'rb').read()


MODELS = {
    'face_detection_short_range': (lambda: plain('face_detection', 'face_detection_short_range.tflite'), -1.0, 1.0),
    'face_landmark': (lambda: packed('face_mesh', 'face_mesh_solution_packed_assets_loader.js', 'face_mesh_solution_packed_assets.data', 'face_landmark.tflite'), 0.0, 1.0),
    'pose_detection': (lambda: packed('pose', 'pose_solution_packed_assets_loader.js', 'pose_solution_packed_assets.data', 'pose_detection.tflite'), -1.0, 1.0),
    'pose_landmark_lite': (lambda: plain('pose', 'pose_landmark_lite.tflite'), 0.0, 1.0),
    'pose_landmark_full': (lambda: plain('pose', 'pose_landmark_full.tflite'), 0.0, 1.0),
    'face_detection_full_range_sparse': (lambda: plain('face_detection', 'face_detection_full_range_sparse.tflite'), -1.0, 1.0),
}


def main():
    photo = cv2.cvtColor(cv2.imread(os.path.join(ROOT, 'tests/fixtures/photos/astronaut-256.png')), cv2.COLOR_BGR2RGB)
    tensors, meta = {}, {}
    for name, (load, lo, hi) in MODELS.items():
        content = load()
        kinds = (litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, litert.OpResolverType.AUTO, litert.OpResolverType.BUILTIN_REF)
        its = [litert.Interpreter(model_content=content, num_threads=1, experimental_op_resolver_type=k) for k in kinds]
        for x in its:
            x.allocate_tensors()
        it = its[0]
        inp = it.get_input_details()[0]
        shape = [int(s) for s in inp['shape']]
        n = int(np.prod(shape))
        i = np.arange(n, dtype=np.int64)
        pattern = (((i * 7919 + 13) % 2001) / 1000 - 1).astype(np.float32).reshape(shape)
        S = shape[1]
        idx = (np.arange(S) * 256) // S
        img = photo[idx][:, idx].astype(np.float32)
        ph = (img * np.float32((hi - lo) / 255) + np.float32(lo)).astype(np.float32)[None]
        outs = it.get_output_details()
        meta[name] = {'input': shape, 'outputs': [o['name'] for o in outs], 'range': [lo, hi]}
        for kind, x in (('pattern', pattern), ('photo', ph)):
            runs = []
            for r in its:
                r.set_tensor(r.get_input_details()[0]['index'], x)
                r.invoke()
                runs.append([r.get_tensor(o['index']).reshape(-1).astype(np.float32).copy() for o in r.get_output_details()])
            for k, o in enumerate(outs):
                y = runs[0][k]
                spread = max(float(np.abs(runs[a][k] - runs[b][k]).max()) for a, b in ((0, 1), (0, 2), (1, 2)))
                tensors[f'{name}/{kind}/{k}/spread'] = np.array([spread], np.float32)
                if y.size > LIMIT:
                    y = y[::STRIDE]
                tensors[f'{name}/{kind}/{k}'] = y
    meta['stride'] = STRIDE
    meta['limit'] = LIMIT
    save_fixture('annotators/tflite_models', tensors, meta)


if __name__ == '__main__':
    main()
