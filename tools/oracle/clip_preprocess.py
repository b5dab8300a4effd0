"""CLIPImageProcessor's preprocessing (transformers 5.23: the torchvision backend, antialiased bicubic on uint8), the
input of diffusers' StableDiffusionSafetyChecker: for a few uint8 RGB images (reduced, enlarged, portrait, landscape,
one axis only), the resized uint8 image before the crop (torchvision.transforms.v2.functional.resize, as
transformers calls it) and the final pixel_values. src/engine/extras/bicubic-antialias.ts and clip-safety-checker.ts
must give the same bytes and the same values. Pillow's own bicubic (transformers 4) is written too, to show how
far it is from torchvision's."""
import numpy as np
import torch
import torchvision.transforms.v2.functional as tvF
from PIL import Image
from transformers import CLIPImageProcessor
from common import save_fixture

rng = np.random.default_rng(7)
# (source width, height, shortest_edge = crop size)
CASES = [(61, 45, 28), (20, 33, 28), (28, 40, 28), (97, 96, 40), (150, 85, 28)]
proc_args = dict(image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711])
tensors, meta = {}, {'cases': []}
for i, (w, h, s) in enumerate(CASES):
    # smooth structure plus noise and saturated patches (the 8-bit clipping of each pass matters)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 100 * np.sin(xx / 5 + c) * np.cos(yy / 7 - c) for c in range(3)], -1)
    img = np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255)
    img[: h // 4, : w // 4] = [255, 0, 255]
    img = img.round().astype(np.uint8)
    proc = CLIPImageProcessor(size={'shortest_edge': s}, crop_size={'height': s, 'width': s}, **proc_args)
    pixel_values = proc(images=Image.fromarray(img), return_tensors='np')['pixel_values'][0]
    # the resize alone (shortest edge s, the long side truncated: int(s * long / short))
    short, long = min(w, h), max(w, h)
    nl = int(s * long / short)
    rw, rh = (s, nl) if w <= h else (nl, s)
    t = torch.from_numpy(img).permute(2, 0, 1).contiguous()
    resized = tvF.resize(t, [rh, rw], interpolation=tvF.InterpolationMode.BICUBIC, antialias=True).permute(1, 2, 0).numpy()
    pil = np.asarray(Image.fromarray(img).resize((rw, rh), resample=Image.BICUBIC, reducing_gap=None))
    tensors[f'image{i}'] = img
    tensors[f'resized{i}'] = np.ascontiguousarray(resized)
    tensors[f'pixel_values{i}'] = pixel_values.astype(np.float32)
    meta['cases'].append({'width': w, 'height': h, 'size': s, 'resized': [rw, rh],
                          'pillow_bytes_differing': int((pil != resized).sum()), 'bytes': int(resized.size)})
save_fixture('safety_checker/clip_preprocess', tensors, meta)
print('clip preprocess fixtures written:', meta['cases'])
