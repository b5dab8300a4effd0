"""Exports the ControlNet 1.1 annotator networks that have no public ONNX export to the ONNX files the
server's annotators load (src/engine/annotators/models.ts), from lllyasviel/Annotators' PyTorch checkpoints,
using the module classes of controlnet_aux 0.0.10 (read from its wheel; its package __init__ is not run, so
none of its optional model stacks is needed).

  annotator_export.py MODELS_DIR --ckpts DIR [hed softedge lineart mlsd]
      DIR holds ControlNetHED.pth, table5_pidinet.pth, sk_model.pth, mlsd_large_512_fp32.pth
  annotator_export.py MODELS_DIR --random [types...]
      random weights (seeded), to check the export and the server's annotators against controlnet_aux
      without the checkpoints (see --compare)
  annotator_export.py MODELS_DIR --random --compare OUT.json
      also runs controlnet_aux's detectors on a test image and writes their outputs to OUT.json

NormalBae (normal) is not covered: its encoder is built through torch.hub at construction time.
"""
import argparse
import glob
import importlib
import json
import os
import subprocess
import sys
import types
import zipfile

import numpy as np
import torch

AUX_VERSION = '0.0.10'
CACHE = os.path.expanduser(f'~/.cache/controlnet-aux-{AUX_VERSION}')

# folder / file / checkpoint per type: the same names as models.ts
TARGETS = {
    'hed': ('hed', 'ControlNetHED.onnx', 'ControlNetHED.pth'),
    'softedge': ('pidinet', 'table5_pidinet.onnx', 'table5_pidinet.pth'),
    'lineart': ('lineart', 'sk_model.onnx', 'sk_model.pth'),
    'mlsd': ('mlsd', 'mlsd_large_512_fp32.onnx', 'mlsd_large_512_fp32.pth'),
}


def controlnet_aux_dir():
    """The controlnet_aux package folder: installed, or unpacked from its wheel (pip download, no deps)."""
    spec = importlib.util.find_spec('controlnet_aux')
    if spec and spec.submodule_search_locations:
        return list(spec.submodule_search_locations)[0]
    pkg = os.path.join(CACHE, 'controlnet_aux')
    if not os.path.isdir(pkg):
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', f'controlnet_aux=={AUX_VERSION}', '-d', CACHE], check=True)
        with zipfile.ZipFile(glob.glob(os.path.join(CACHE, '*.whl'))[0]) as z:
            z.extractall(CACHE)
    return pkg


def aux(module):
    """Imports controlnet_aux.<module> without running the package's __init__ (which imports every detector)."""
    if 'controlnet_aux' not in sys.modules:
        pkg = types.ModuleType('controlnet_aux')
        pkg.__path__ = [controlnet_aux_dir()]
        sys.modules['controlnet_aux'] = pkg
    return importlib.import_module(f'controlnet_aux.{module}')


class Forward(torch.nn.Module):
    """ControlNetHED_Apache2 overrides __call__ instead of forward; tracing wants a forward."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return tuple(self.net(x))


def build(kind, ckpt_dir):
    ckpt = os.path.join(ckpt_dir, TARGETS[kind][2]) if ckpt_dir else None
    if kind == 'hed':
        net = aux('hed').ControlNetHED_Apache2()
        if ckpt:
            net.load_state_dict(torch.load(ckpt, map_location='cpu'))
        return Forward(net), net, (1, 3), [f'p{k}' for k in range(5)]
    if kind == 'softedge':
        net = aux('pidi.model').pidinet()
        if ckpt:
            net.load_state_dict({k.replace('module.', ''): v for k, v in torch.load(ckpt, map_location='cpu')['state_dict'].items()})
        else:
            with torch.no_grad():  # spread the random fused map over (0, 1) so the comparison has contrast
                net.classifier.weight.mul_(200.0)
        return Forward(net), net, (1, 3), [f'side{k}' for k in range(4)] + ['fused']
    if kind == 'lineart':
        net = aux('lineart').Generator(3, 1, 3)
        if ckpt:
            net.load_state_dict(torch.load(ckpt, map_location='cpu'))
        return net, net, (1, 3), ['line']
    if kind == 'mlsd':
        net = aux('mlsd.models.mbv2_mlsd_large').MobileV2_MLSD_Large()
        if ckpt:
            net.load_state_dict(torch.load(ckpt, map_location='cpu'), strict=True)
        return net, net, (1, 4), ['tpmap']
    raise SystemExit(f'no exporter for {kind}')


def export(kind, models_dir, ckpt_dir):
    folder, file, _ = TARGETS[kind]
    wrapped, net, (n, c), outputs = build(kind, ckpt_dir)
    wrapped.eval()
    path = os.path.join(models_dir, 'annotator', folder, file)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    axes = {'x': {2: 'h', 3: 'w'}}
    axes.update({o: {2: f'{o}_h', 3: f'{o}_w'} for o in outputs})
    with torch.no_grad():
        torch.onnx.export(wrapped, (torch.zeros(n, c, 64, 64),), path, dynamo=False, opset_version=17,
                          input_names=['x'], output_names=outputs, dynamic_axes=axes)
    print('wrote', path)
    return net


def compare(nets, out_path):
    """Runs controlnet_aux's own detector __call__ (detect and image resolution 64) on a test image."""
    import cv2
    rng = np.random.default_rng(3)
    img = np.zeros((64, 64, 3), np.uint8)
    cv2.rectangle(img, (10, 12), (40, 50), (240, 200, 30), -1)
    cv2.circle(img, (46, 20), 10, (20, 90, 250), -1)
    cv2.line(img, (0, 60), (63, 30), (255, 255, 255), 2)
    img = np.clip(img.astype(np.int16) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
    result = {'image': img.ravel().tolist()}
    with torch.no_grad():
        if 'hed' in nets:
            result['hed'] = np.asarray(aux('hed').HEDdetector(nets['hed'])(img, 64, 64, output_type='np'))[:, :, 0].ravel().tolist()
        if 'softedge' in nets:
            result['softedge'] = np.asarray(aux('pidi').PidiNetDetector(nets['softedge'])(img, 64, 64, output_type='np'))[:, :, 0].ravel().tolist()
        if 'lineart' in nets:
            result['lineart'] = np.asarray(aux('lineart').LineartDetector(nets['lineart'], nets['lineart'])(
                img, detect_resolution=64, image_resolution=64, output_type='np'))[:, :, 0].ravel().tolist()
        if 'mlsd' in nets:
            result['mlsd'] = np.asarray(aux('mlsd').MLSDdetector(nets['mlsd'])(img, 0.1, 0.1, 64, 64, output_type='np'))[:, :, 0].ravel().tolist()
    with open(out_path, 'w') as f:
        json.dump(result, f)
    print('wrote', out_path)


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('models_dir', nargs='?')
    ap.add_argument('types', nargs='*', default=list(TARGETS))
    ap.add_argument('--ckpts')
    ap.add_argument('--random', action='store_true')
    ap.add_argument('--compare')
    a = ap.parse_args()
    if not a.models_dir:  # run.sh runs every oracle script without arguments: this one writes no fixtures
        print(__doc__)
        raise SystemExit(0)
    if not a.ckpts and not a.random:
        raise SystemExit('give --ckpts DIR (real weights) or --random')
    torch.manual_seed(0)
    nets = {t: export(t, a.models_dir, None if a.random else a.ckpts) for t in a.types}
    for n in nets.values():
        n.eval()
    if a.compare:
        compare(nets, a.compare)
