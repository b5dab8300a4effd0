"""Oracle for the segmentation annotator built from its original checkpoint (src/engine/models/annotators/uniformer.ts,
src/engine/annotators/neural/uniformer.ts): ControlNet 1.1's "seg_ufade20k", UniformerDetector of
lllyasviel/ControlNet-v1-1-nightly (annotator/uniformer: UniFormer-S + UperNet, upernet_global_small.pth, its vendored
mmcv / mmseg and the config exp/upernet_global_small/config.py), run from that repository's source, which is not
vendored here (1.6 MB of third-party code): pass a checkout, or the git directory of a mirror, as the first argument:

    tools/oracle/run.sh annotator_uniformer.py /path/to/ControlNet-v1-1-nightly   # or its bare .git directory
    (or CN11_SOURCE=/path ...)

Its extra Python dependencies (addict, yapf, matplotlib, prettytable) are pinned in requirements.txt.

The weights are annotator_checkpoints.py's deterministic pattern weights (the TypeScript test regenerates them bit
for bit), so nothing but keys, shapes and outputs is committed.

- "narrow": the annotator's config with the same module classes, code paths, depths (3, 4, 8, 3 blocks), head
  width 64 and 150 classes, only narrower: stage widths 32-64-128-192 (2 and 3 heads in the attention stages),
  UperNet channels 32 (auxiliary head 16). Its logits (EncoderDecoder.encode_decode, then whole_inference's rescale
  to an original size of 16x24) on a pattern input of 64x96, and torch's own float32 error (float64 run).
- "detector": UniformerDetector.__call__ with that network on a 24x32 uint8 pattern image: inference_segmentor
  (mmseg's test pipeline: keep-ratio rescale into (2048, 512) with cv2 bilinear, so 512x683 here; Normalize with
  to_rgb on the RGB image; whole inference; softmax; argmax) and show_result_pyplot(palette 'ade', opacity 1).
  Its logits at the original size (captured from whole_inference), the hint, and cv2.resize INTER_LINEAR results
  of the same image at a few sizes (the rescale step on its own).
- "full": the real architecture at full width (the key set and shapes of upernet_global_small.pth, ~52 M
  parameters with the auxiliary head), its logits on a 64x64 pattern input rescaled to 16x16.
Writes tests/fixtures/annotators/uniformer.{json,bin}.
"""
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from annotator_checkpoints import load_pattern, pattern_input
from common import save_fixture

NARROW = dict(embed_dim=[32, 64, 128, 192], channels=32, aux_channels=16)


def source_root(arg):
    """A directory holding annotator/uniformer: the checkout itself, or the tree of HEAD of a git directory."""
    if os.path.isdir(os.path.join(arg, 'annotator', 'uniformer')):
        return arg, None
    tmp = tempfile.mkdtemp(prefix='cn11-')
    commit = subprocess.check_output(['git', '--git-dir', arg, 'rev-parse', 'HEAD'], text=True).strip()
    archive = subprocess.check_output(['git', '--git-dir', arg, 'archive', 'HEAD', 'annotator/uniformer', 'annotator/util.py'])
    subprocess.run(['tar', '-x', '-C', tmp], input=archive, check=True)
    return tmp, commit


def main(src):
    root, commit = source_root(src)
    sys.path.insert(0, root)
    import annotator.uniformer.mmcv as mmcv
    from annotator.uniformer.mmseg.apis import init_segmentor, inference_segmentor, show_result_pyplot
    from annotator.uniformer.mmseg.core.evaluation import get_palette
    from annotator.uniformer.mmseg.datasets import ADE20KDataset
    from annotator.uniformer.mmseg.ops import resize

    # the config UniformerDetector loads
    def load_config():
        return mmcv.Config.fromfile(os.path.join(root, 'annotator', 'uniformer', 'exp', 'upernet_global_small', 'config.py'))

    base = load_config()
    assert base.model.test_cfg.mode == 'whole', base.model.test_cfg
    assert base.model.backbone.windows is False and base.model.backbone.hybrid is False

    def segmentor(cfg):
        m = init_segmentor(cfg, None, device='cpu')
        keys = load_pattern(m)
        m.eval()
        # what init_segmentor reads from the checkpoint's meta
        m.CLASSES, m.PALETTE = ADE20KDataset.CLASSES, ADE20KDataset.PALETTE
        return m, keys

    def logits_at(m, x, size):
        """EncoderDecoder.whole_inference(rescale=True) before its softmax: encode_decode, then resize to `size`."""
        with torch.no_grad():
            return resize(m.encode_decode(x, None), size=size, mode='bilinear', align_corners=m.align_corners, warning=False)

    def float32_error(m, x, size, out):
        exact = logits_at(m.double(), x.double(), size)
        m.float()
        return float((out.double() - exact).abs().max())

    tensors, meta = {}, {'source_commit': commit}
    cfg = load_config()
    cfg.model.backbone.embed_dim = NARROW['embed_dim']
    cfg.model.decode_head.in_channels = NARROW['embed_dim']
    cfg.model.decode_head.channels = NARROW['channels']
    cfg.model.auxiliary_head.in_channels = NARROW['embed_dim'][2]
    cfg.model.auxiliary_head.channels = NARROW['aux_channels']
    net, keys = segmentor(cfg)

    shape, scale, offset, size = [1, 3, 64, 96], 4.0, -2.0, [16, 24]
    x = pattern_input(shape, scale) + offset
    out = logits_at(net, x, size)
    meta['narrow'] = {'keys': keys, 'input': shape, 'scale': scale, 'offset': offset, 'output_size': size,
                      'outputs': [list(out.shape)], 'config': NARROW,
                      'torch_float32_error': float32_error(net, x, size, out)}
    tensors['narrow/0'] = out.numpy().astype(np.float32).reshape(-1)
    tensors['narrow/w0'] = net.state_dict()[keys[0][0]].numpy().reshape(-1)[:64]

    # UniformerDetector.__call__ with the narrow network, the logits captured at whole_inference
    h, w = 24, 32
    img = np.round(pattern_input([h * w * 3], 255.0).numpy()).astype(np.uint8).reshape(h, w, 3)
    captured = {}
    whole = net.whole_inference

    def spy(image, img_meta, rescale):
        captured['input'] = list(image.shape)
        captured['logits'] = whole(image, img_meta, rescale)
        return captured['logits']

    net.whole_inference = spy
    result = inference_segmentor(net, img)
    hint = show_result_pyplot(net, img, result, get_palette('ade'), opacity=1)
    net.whole_inference = whole
    logits = captured['logits']
    assert hint.shape == (h, w, 3), hint.shape
    top2 = torch.topk(logits, 2, dim=1).values
    meta['detector'] = {'width': w, 'height': h, 'network_input': captured['input'], 'outputs': [list(logits.shape)],
                        'classes_used': int(len(np.unique(result[0]))),
                        'min_top2_gap': float((top2[:, 0] - top2[:, 1]).min())}
    tensors['detector/image'] = img.reshape(-1)
    tensors['detector/logits'] = logits.numpy().astype(np.float32).reshape(-1)
    tensors['detector/labels'] = result[0].astype(np.int32).reshape(-1)
    tensors['detector/hint'] = hint.reshape(-1)
    tensors['palette'] = np.array(get_palette('ade'), dtype=np.uint8).reshape(-1)
    # the rescale step alone: cv2.resize INTER_LINEAR of the uint8 image (mmcv.imresize's backend)
    meta['resize'] = [[53, 40], [23, 17], [48, 36], [16, 12], [8, 6], [683, 512]]
    for rw, rh in meta['resize'][:-1]:
        tensors[f'resize/{rw}x{rh}'] = cv2.resize(img, (rw, rh), interpolation=cv2.INTER_LINEAR).reshape(-1)
    big = mmcv.imrescale(img, (2048, 512))
    assert list(big.shape[:2]) == captured['input'][2:], (big.shape, captured['input'])
    tensors['resize/683x512/rows'] = big[::37].reshape(-1)  # every 37th row of the network-size image

    # the real architecture at full width
    full, keys = segmentor(load_config())
    shape, size = [1, 3, 64, 64], [16, 16]
    x = pattern_input(shape, scale) + offset
    out = logits_at(full, x, size)
    meta['full'] = {'keys': keys, 'input': shape, 'scale': scale, 'offset': offset, 'output_size': size,
                    'outputs': [list(out.shape)], 'parameters': int(sum(v.numel() for v in full.state_dict().values())),
                    'torch_float32_error': float32_error(full, x, size, out)}
    tensors['full/0'] = out.numpy().astype(np.float32).reshape(-1)
    save_fixture('annotators/uniformer', tensors, meta)
    print({k: (v['outputs'], v.get('torch_float32_error'), v.get('min_top2_gap')) for k, v in meta.items() if isinstance(v, dict) and 'outputs' in v})


if __name__ == '__main__':
    torch.manual_seed(0)
    arg = sys.argv[1] if len(sys.argv) > 1 else os.environ.get('CN11_SOURCE')
    if not arg:
        sys.exit('usage: annotator_uniformer.py <ControlNet-v1-1-nightly checkout or git directory> (or CN11_SOURCE)')
    main(arg)
