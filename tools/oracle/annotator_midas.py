"""Oracle for the depth annotator built from its original checkpoint (src/engine/models/annotators/midas.ts):
ControlNet 1.1's default depth annotator, controlnet_aux 0.0.10's MidasDetector with MiDaS DPT-Hybrid
(dpt_hybrid-midas-501f0c75.pt: DPTDepthModel, backbone "vitb_rn50_384" = timm's R50+ViT-B/16 hybrid, readout
"project", non_negative), run with timm==1.0.31 (tools/oracle/requirements.txt).

The weights are annotator_checkpoints.py's deterministic pattern weights (the TypeScript test regenerates them bit
for bit), so nothing but keys, shapes and outputs is committed.

- "narrow": the same module classes and code paths (controlnet_aux's DPT, _make_vit_b_rn50_backbone, _make_scratch,
  timm's ResNetV2 with StdConv2dSame eps 1e-8 + GroupNormAct(32), HybridEmbed, VisionTransformer with 12 blocks and
  12 heads, 577 position embeddings) with the same key names and depths as the real checkpoint, only narrower:
  ResNet stem 64 / stages 64-128-256 (bottle_ratio 0.5, so every GroupNorm has 32 groups of >= 1 channel), ViT
  width 96 (12 heads of 8), DPT features 32. ~3.5 M parameters instead of 123 M.
  Its raw output (before any post-processing) on a pattern input, and MidasDetector's whole hint (uint8) of a
  pattern image run with this network.
- "full": the real architecture at full width (the key set and shapes of dpt_hybrid-midas-501f0c75.pt, 123 M
  parameters), its raw output on a small pattern input.
Writes tests/fixtures/annotators/midas.{json,bin}.
"""
import numpy as np
import torch
import torch.nn as nn
from functools import partial

from annotator_checkpoints import load_pattern, pattern_input
from annotator_export import aux
from common import save_fixture

NARROW = dict(stem_chs=64, channels=(64, 128, 256), bottle_ratio=0.5, embed_dim=96, features=32)


def narrow_dpt():
    """controlnet_aux's DPTDepthModel(backbone='vitb_rn50_384') whose encoder is built narrower by the same code."""
    import timm.layers
    from timm.models.resnetv2 import ResNetV2
    from timm.models.vision_transformer_hybrid import _create_vision_transformer_hybrid
    dpt = aux('midas.midas.dpt_depth')
    blocks = aux('midas.midas.blocks')
    vit = aux('midas.midas.vit')

    def make_encoder(backbone, features, use_pretrained, groups=1, expand=False, exportable=True, hooks=None,
                     use_vit_only=False, use_readout='ignore'):
        assert backbone == 'vitb_rn50_384'
        # timm's vit_base_r50_s16_384 (_resnetv2 + _create_vision_transformer_hybrid), narrower
        resnet = ResNetV2(layers=(3, 4, 9), channels=NARROW['channels'], stem_chs=NARROW['stem_chs'],
                          bottle_ratio=NARROW['bottle_ratio'], num_classes=0, global_pool='', in_chans=3, preact=False,
                          stem_type='same', conv_layer=partial(timm.layers.StdConv2dSame, eps=1e-8))
        model = _create_vision_transformer_hybrid('vit_base_r50_s16_384', backbone=resnet, pretrained=False,
                                                  img_size=384, embed_dim=NARROW['embed_dim'], depth=12, num_heads=12)
        d = NARROW['embed_dim']
        c = NARROW['channels']
        pretrained = vit._make_vit_b_rn50_backbone(model, features=[c[0], c[1], d, d], size=[384, 384], hooks=hooks,
                                                   vit_features=d, use_vit_only=use_vit_only, use_readout=use_readout)
        scratch = blocks._make_scratch([c[0], c[1], d, d], features, groups=groups, expand=expand)
        return pretrained, scratch

    saved = dpt._make_encoder
    dpt._make_encoder = make_encoder
    try:
        return dpt.DPTDepthModel(path=None, backbone='vitb_rn50_384', non_negative=True, features=NARROW['features'])
    finally:
        dpt._make_encoder = saved


def float32_error(net, x, out):
    """max |torch float32 output - the same network in float64|: the reference's own rounding error, for scale
    (the network is put back in float32)."""
    with torch.no_grad():
        exact = net.double()(x.double())
    net.float()
    return float((out.double() - exact).abs().max())


class Inference(nn.Module):
    """What MidasDetector calls: MiDaSInference's forward (the network under no_grad)."""

    def __init__(self, net):
        super().__init__()
        self.model = net

    def forward(self, x):
        with torch.no_grad():
            return self.model(x)


def main():
    tensors, meta = {}, {}

    net = narrow_dpt()
    keys = load_pattern(net)
    net.eval()
    shape, scale, offset = [1, 3, 64, 96], 2.0, -1.0  # the detector feeds pixels / 127.5 - 1
    x = pattern_input(shape, scale) + offset
    with torch.no_grad():
        out = net(x)
    meta['narrow'] = {'keys': keys, 'input': shape, 'scale': scale, 'offset': offset, 'outputs': [list(out.shape)],
                      'config': NARROW, 'positive': float((out > 0).float().mean()),
                      'torch_float32_error': float32_error(net, x, out)}
    tensors['narrow/0'] = out.numpy().astype(np.float32).reshape(-1)
    tensors['narrow/w0'] = net.state_dict()[keys[0][0]].numpy().reshape(-1)[:64]

    # MidasDetector's whole hint with that network: an image already at the detect resolution's size (short side
    # 64, sides multiples of 64), so resize_image leaves it as is
    h, w = 64, 128
    img = np.round(pattern_input([h * w * 3], 255.0).numpy()).astype(np.uint8).reshape(h, w, 3)
    detector = aux('midas').MidasDetector(Inference(net))
    hint = detector(img, detect_resolution=64, image_resolution=64, output_type='np')
    assert hint.shape == (h, w, 3), hint.shape
    meta['detector'] = {'width': w, 'height': h}
    tensors['detector/image'] = img.reshape(-1)
    tensors['detector/hint'] = hint.reshape(-1)

    # the real architecture at full width (123 M parameters): its raw output only
    full = aux('midas.midas.dpt_depth').DPTDepthModel(path=None, backbone='vitb_rn50_384', non_negative=True)
    keys = load_pattern(full)
    full.eval()
    shape = [1, 3, 64, 64]
    x = pattern_input(shape, scale) + offset
    with torch.no_grad():
        out = full(x)
    meta['full'] = {'keys': keys, 'input': shape, 'scale': scale, 'offset': offset, 'outputs': [list(out.shape)],
                    'parameters': int(sum(v.numel() for v in full.state_dict().values())),
                    'positive': float((out > 0).float().mean()), 'torch_float32_error': float32_error(full, x, out)}
    tensors['full/0'] = out.numpy().astype(np.float32).reshape(-1)
    save_fixture('annotators/midas', tensors, meta)
    print({k: (v['outputs'], v.get('positive'), v.get('torch_float32_error')) for k, v in meta.items() if 'outputs' in v})


if __name__ == '__main__':
    torch.manual_seed(0)
    main()
