"""RRDBNet (ESRGAN / Real-ESRGAN generator) fixtures from basicsr's own architecture code (basicsr 1.4.2,
basicsr/archs/rrdbnet_arch.py) on tiny random-weight configs, scale 4 (x4plus layout, saved as a Real-ESRGAN
.pth with params_ema and params) and scale 2 (x2plus layout: pixel-unshuffled input, saved as .safetensors).

basicsr 1.4.2 imports torchvision.transforms.functional_tensor, which torchvision 0.17+ removed: a stand-in
module with the same function is registered before the import (the architecture does not use it).
Install: pip install --no-deps --no-build-isolation basicsr==1.4.2 (its setup.py needs torch at build time).
"""
import os, sys, types
import torch
import torchvision.transforms.functional as TF
from safetensors.torch import save_file

sys.modules.setdefault('torchvision.transforms.functional_tensor', types.SimpleNamespace(rgb_to_grayscale=TF.rgb_to_grayscale))
from basicsr.archs.rrdbnet_arch import RRDBNet  # noqa: E402

from common import FIXTURES, save_fixture  # noqa: E402

out_dir = os.path.join(FIXTURES, 'rrdbnet')
os.makedirs(out_dir, exist_ok=True)
tensors, meta = {}, {}
for name, scale, h, w in [('x4', 4, 12, 10), ('x2', 2, 12, 16)]:
    torch.manual_seed(7 + scale)
    net = RRDBNet(num_in_ch=3, num_out_ch=3, scale=scale, num_feat=8, num_block=2, num_grow_ch=4).eval()
    # random weights of a realistic size (default init is scaled by 0.1; keep it, as trained nets are similar)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    if scale == 4:
        other = {k: v + 1 for k, v in sd.items()}  # "params" differs, so using the wrong dict would show
        torch.save({'params_ema': sd, 'params': other}, os.path.join(out_dir, f'{name}.pth'))
    else:
        save_file(sd, os.path.join(out_dir, f'{name}.safetensors'))
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(scale))
    with torch.no_grad():
        y = net(x)
    tensors[f'{name}.input'] = x
    tensors[f'{name}.output'] = y
    meta[name] = {'scale': scale, 'num_feat': 8, 'num_block': 2, 'num_grow_ch': 4}
save_fixture('rrdbnet/outputs', tensors, meta)
print('rrdbnet fixtures written')
