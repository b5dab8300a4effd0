"""Images with transparency as users send them, and what the references make of them.

- hint (control_image): ControlNet's HWC3 (lllyasviel/ControlNet-v1-1-nightly annotator/util.py), which
  composites RGBA over white: y = color * a + 255 * (1 - a), a = alpha / 255 in float32, clipped, truncated.
  The image is first converted to RGBA by PIL (palette transparency and grey + alpha become RGBA).
- init_image: A1111's images.flatten(img, opts.img2img_background_color) with its default "#ffffff" (PIL paste
  with the alpha as mask, which rounds where HWC3 truncates: the TS side uses HWC3 for both, within 1 level).
- mask_image: A1111's create_binary_mask: an RGBA mask whose alpha is not all 255 is its alpha channel
  (opaque = repaint), otherwise its luma.

Writes tests/fixtures/inputs/alpha/<case>.<ext> (the images) and tests/fixtures/inputs/alpha.json/.bin.
"""
import io, os
import numpy as np
from PIL import Image
from common import FIXTURES, save_fixture

W, H = 24, 16
OUT = os.path.join(FIXTURES, 'inputs', 'alpha')


def hwc3(x):
    """ControlNet-v1-1-nightly annotator/util.py HWC3, verbatim in effect."""
    assert x.dtype == np.uint8
    if x.ndim == 2:
        x = x[:, :, None]
    H_, W_, C = x.shape
    if C == 3:
        return x
    if C == 1:
        return np.concatenate([x, x, x], axis=2)
    color = x[:, :, 0:3].astype(np.float32)
    alpha = x[:, :, 3:4].astype(np.float32) / 255.0
    y = color * alpha + 255.0 * (1.0 - alpha)
    return y.clip(0, 255).astype(np.uint8)


def flatten_white(img):
    """A1111 modules/images.py flatten(img, '#ffffff')."""
    if img.mode == 'RGBA':
        background = Image.new('RGBA', img.size, '#ffffff')
        background.paste(img, mask=img)
        img = background
    return img.convert('RGB')


def a1111_mask(img):
    """A1111 modules/images.py create_binary_mask(image, round=False): the grey mask before binarizing."""
    if img.mode == 'RGBA' and img.getextrema()[-1] != (255, 255):
        return img.split()[-1].convert('L')
    return img.convert('L')


def strokes():
    """Black strokes on a transparent background, with anti-aliased (partly transparent) edges."""
    a = np.zeros((H, W), np.uint8)
    a[4:6, 2:22] = 255  # a horizontal stroke
    a[2:14, 11:13] = 255  # a vertical one
    a[6, 2:22] = 128  # soft edge
    a[2:14, 13] = 64
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 3] = a
    return rgba


def gradient():
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    rgba[0, :, 3] = 0
    rgba[1, :, 3] = 255
    return rgba


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = {}
    s = Image.fromarray(strokes(), 'RGBA')
    cases['strokes-rgba.png'] = s
    cases['gradient-rgba.png'] = Image.fromarray(gradient(), 'RGBA')
    cases['strokes-la.png'] = s.convert('LA')
    # palette with a transparent index (tRNS): quantize the colours, make index of the background transparent
    p = Image.fromarray(np.where(strokes()[..., 3:4] > 0, [[[200, 30, 60]]], [[[0, 0, 0]]]).astype(np.uint8), 'RGB').convert('P', palette=Image.ADAPTIVE, colors=4)
    bg = p.getpixel((0, 0))
    p.info['transparency'] = bg
    cases['strokes-palette.png'] = p
    cases['gradient-rgba.webp'] = Image.fromarray(gradient(), 'RGBA')
    tensors, names = {}, []
    for name, img in cases.items():
        path = os.path.join(OUT, name)
        if name.endswith('.webp'):
            img.save(path, lossless=True)
        elif img.mode == 'P':
            img.save(path, transparency=img.info['transparency'])
        else:
            img.save(path)
        loaded = Image.open(path)
        loaded.load()
        rgba = loaded.convert('RGBA')
        key = name.replace('.', '_')
        tensors[f'{key}.hint'] = hwc3(np.asarray(rgba))
        tensors[f'{key}.init'] = np.asarray(flatten_white(rgba))
        tensors[f'{key}.mask'] = np.asarray(a1111_mask(rgba))
        names.append(name)
    save_fixture('inputs/alpha', tensors, {'cases': names, 'width': W, 'height': H})


if __name__ == '__main__':
    main()
