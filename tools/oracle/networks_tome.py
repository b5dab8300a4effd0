"""ToMe (tomesd 0.1.3) applied to the tiny SD 1.5 UNet of tiny_models.py: reference outputs for the UNet graph
built with token merging. tomesd's diffusers block reads attributes that diffusers 0.42 no longer sets
(use_ada_layer_norm*); they are set to False here, which is what they meant for SD 1.5's plain LayerNorm blocks.

Writes tests/fixtures/tiny/unet_tome_fwd.{json,bin}: inputs as unet_fwd, outputs for
ratio 0.5, max_downsample 1, sx = sy = 2 with use_rand False ('out_norand') and True ('out_rand').
tomesd's random dst choice draws from a generator forked from torch's global RNG that advances block after
block and step after step (so it is not reproducible from a request seed). tome.ts makes it deterministic: every
block uses the first draws of torch.Generator().manual_seed(seed). 'out_rand' is tomesd with exactly that: the
generator is reset to manual_seed(42) before each merging block.
"""
import torch
import tomesd
from common import save_fixture
from diffusers import UNet2DConditionModel
from tiny_models import UNET_SD15, randomize, round_fp16  # the same tiny UNet, rebuilt (no file-order dependency)

torch.set_grad_enabled(False)


def main():
    unet = round_fp16(randomize(UNet2DConditionModel(**UNET_SD15), 1))
    sample = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(11))
    t = torch.tensor([999.0, 10.5])
    ehs = torch.randn(2, 77, 32, generator=torch.Generator().manual_seed(12))
    plain = unet(sample, t, ehs).sample
    for m in unet.modules():
        if type(m).__name__ == 'BasicTransformerBlock':
            m.use_ada_layer_norm = False
            m.use_ada_layer_norm_zero = False
    out = {'sample': sample, 'timestep': t, 'encoder_hidden_states': ehs, 'out_plain': plain}
    for key, use_rand in (('out_norand', False), ('out_rand', True)):
        tomesd.apply_patch(unet, ratio=0.5, max_downsample=1, sx=2, sy=2, use_rand=use_rand)
        hooks = []
        for m in unet.modules():
            if type(m).__name__ == 'ToMeBlock':
                def reset(mod, args, kwargs):
                    unet._tome_info['args']['generator'] = torch.Generator().manual_seed(42)
                hooks.append(m.register_forward_pre_hook(reset, with_kwargs=True))
        out[key] = unet(sample, t, ehs).sample
        for h in hooks:
            h.remove()
        tomesd.remove_patch(unet)
    save_fixture('tiny/unet_tome_fwd', out, {'ratio': 0.5, 'max_downsample': 1, 'sx': 2, 'sy': 2, 'seed': 42})
    print('max |tome - plain|', (out['out_norand'] - plain).abs().max().item(), (out['out_rand'] - plain).abs().max().item())


if __name__ == '__main__':
    main()
