"""The demo model's synthetic data: one filled shape of a named colour on a background of another named colour.

sample(seed, index) -> Sample is a pure function of (seed, index): training uses seed 0, the held-out evaluation
seed 1. Images are 128x128 RGB uint8; the caption reads "a red circle on a blue background".

The control hints use the algorithms of our own annotators (src/engine/annotators/):
- canny: cv2.Canny(image, 100, 200) on the RGB image (canny.ts follows OpenCV's Canny on 3-channel input);
- scribble: scribble.ts scribbleFromCanny: the canny map, blurred with a Gaussian of sigma 3 computed in float with
  OpenCV's uint8 kernel size (2*round(3*sigma)+1 = 19) and reflect-101 borders, then > 4 -> 255.
"""
from dataclasses import dataclass
import math

import cv2
import numpy as np

SIZE = 128
COLOURS = {
    'red': (220, 30, 30), 'green': (30, 170, 50), 'blue': (30, 60, 220), 'yellow': (240, 220, 30),
    'orange': (245, 130, 20), 'purple': (140, 40, 170), 'white': (245, 245, 245), 'black': (15, 15, 15),
}
SHAPES = ('circle', 'square', 'triangle', 'star')
WORDS = ('a', 'on', 'background', *COLOURS, *SHAPES)


@dataclass
class Sample:
    image: np.ndarray  # [128,128,3] uint8 RGB
    mask: np.ndarray  # [128,128] bool, the shape (drawn without anti-aliasing)
    caption: str
    shape: str
    colour: str
    background: str


def caption(shape: str, colour: str, background: str) -> str:
    return f'a {colour} {shape} on a {background} background'


def _outline(shape: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Polygon of a shape of 'radius' r (pixels) centred at (cx, cy); circles use many vertices."""
    if shape == 'circle':
        t = np.linspace(0, 2 * math.pi, 96, endpoint=False)
        rr = np.full_like(t, r)
    elif shape == 'square':
        t = angle + math.pi / 4 + np.arange(4) * math.pi / 2
        rr = np.full_like(t, r)
    elif shape == 'triangle':
        t = angle - math.pi / 2 + np.arange(3) * 2 * math.pi / 3
        rr = np.full_like(t, r)
    else:  # star: 5 points, inner radius 0.45 r
        t = angle - math.pi / 2 + np.arange(10) * math.pi / 5
        rr = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
    return np.stack([cx + rr * np.cos(t), cy + rr * np.sin(t)], 1)


def sample(seed: int, index: int) -> Sample:
    rng = np.random.default_rng([seed, index])
    names = list(COLOURS)
    colour, background = rng.choice(len(names), 2, replace=False)
    colour, background = names[colour], names[background]
    shape = SHAPES[rng.integers(len(SHAPES))]
    r = float(rng.uniform(22, 50))
    cx, cy = rng.uniform(r + 4, SIZE - r - 4, 2)
    angle = float(rng.uniform(-0.35, 0.35))  # small tilt (radians) for polygons
    pts = _outline(shape, float(cx), float(cy), r, angle)
    shift = 4  # sub-pixel vertices (cv2 fixed point, 1/16 px)
    ipts = np.round(pts * (1 << shift)).astype(np.int32)[None]
    image = np.empty((SIZE, SIZE, 3), np.uint8)
    image[:] = COLOURS[background]
    cv2.fillPoly(image, ipts, COLOURS[colour], lineType=cv2.LINE_AA, shift=shift)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(mask, ipts, 1, lineType=cv2.LINE_8, shift=shift)
    return Sample(image, mask.astype(bool), caption(shape, colour, background), shape, colour, background)


def canny(image: np.ndarray) -> np.ndarray:
    """Our canny annotator (canny.ts, defaults 100/200): [H,W] uint8 0/255."""
    return cv2.Canny(image, 100, 200)


def scribble(image: np.ndarray) -> np.ndarray:
    """Our scribbleFromCanny (scribble.ts): [H,W] uint8 0/255."""
    blurred = cv2.GaussianBlur(canny(image).astype(np.float32), (19, 19), 3, borderType=cv2.BORDER_REFLECT_101)
    return np.where(np.round(blurred) > 4, 255, 0).astype(np.uint8)


HINTS = {'canny': canny, 'scribble': scribble}


def hint_rgb(kind: str, image: np.ndarray) -> np.ndarray:
    """The hint as the RGB image the pipeline receives ([H,W,3] uint8)."""
    g = HINTS[kind](image)
    return np.repeat(g[:, :, None], 3, 2)


if __name__ == '__main__':
    import sys
    from PIL import Image
    out = sys.argv[1] if len(sys.argv) > 1 else '/tmp/demo_dataset.png'
    tiles = []
    for i in range(8):
        s = sample(0, i)
        print(i, s.caption)
        tiles.append(np.concatenate([s.image, hint_rgb('canny', s.image), hint_rgb('scribble', s.image)], 0))
    Image.fromarray(np.concatenate(tiles, 1)).save(out)
