"""Measures the demo model on held-out cases (dataset seed 1, never trained on), through diffusers and our engine.

    python evaluate.py cases OUT                 # OUT/cases.json + control PNGs + shape masks
    python evaluate.py diffusers OUT [MODEL]     # StableDiffusionControlNetPipeline -> OUT/diffusers/<name>.f32
    node --import tsx bench/demo-model-eval.ts OUT [MODEL]   # our engine -> OUT/ours/<name>.f32
    python evaluate.py score OUT                 # the table (markdown) + OUT/scores.json

Every case: the held-out sample's caption as prompt, its canny or scribble hint (our annotators' algorithms,
dataset.py) as the control image, UniPC (diffusers' defaults from SD 1.5's scheduler config, no Karras sigmas),
20 steps, CFG 7.5, empty negative prompt, seed 1000 + i, controlnet_conditioning_scale 1 and (canny only) 0.

Scores, on the output rounded to uint8:
- shape colour: the mean colour over the known shape mask eroded by 2 px (anti-aliased rims left out) is nearest,
  among the 8 named colours, to the prompt's shape colour;
- background colour: likewise over the background (mask dilated by 2 px, left out);
- edge IoU: canny(output, 100, 200) against canny(ground-truth image), each edge map dilated by a 5x5 square
  (a 2 px tolerance) before intersection over union.
"""
import json
import os
import sys

import cv2
import numpy as np

import dataset

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = os.path.join(HERE, '..', '..', 'assets', 'demo-model')
N_CASES = 24
EVAL_SEED = 1
STEPS, GUIDANCE = 20, 7.5


def case_list():
    cases = []
    for i in range(N_CASES):
        s = dataset.sample(EVAL_SEED, i)
        for kind, scale in (('canny', 1.0), ('scribble', 1.0), ('canny', 0.0)):
            cases.append({'name': f'{i:02d}-{kind}-{scale:g}', 'index': i, 'prompt': s.caption, 'seed': 1000 + i,
                          'type': kind, 'control': f'control/{i:02d}-{kind}.png', 'scale': scale, 'steps': STEPS,
                          'guidance': GUIDANCE})
    return cases


def write_cases(out: str) -> None:
    from PIL import Image
    os.makedirs(os.path.join(out, 'control'), exist_ok=True)
    for i in range(N_CASES):
        s = dataset.sample(EVAL_SEED, i)
        for kind in dataset.HINTS:
            Image.fromarray(dataset.hint_rgb(kind, s.image)).save(os.path.join(out, 'control', f'{i:02d}-{kind}.png'))
    with open(os.path.join(out, 'cases.json'), 'w') as f:
        json.dump({'width': dataset.SIZE, 'height': dataset.SIZE, 'cases': case_list()}, f, indent=1)


def run_diffusers(out: str, model: str) -> None:
    import time
    import torch
    from PIL import Image
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline, UniPCMultistepScheduler
    torch.set_num_threads(1)
    cases = json.load(open(os.path.join(out, 'cases.json')))['cases']
    nets = {k: ControlNetModel.from_pretrained(os.path.join(model, f'controlnet-{k}'), torch_dtype=torch.float32)
            for k in {c['type'] for c in cases}}
    pipe = StableDiffusionControlNetPipeline.from_pretrained(
        os.path.join(model, 'base'), controlnet=nets['canny'], safety_checker=None, torch_dtype=torch.float32)
    pipe.scheduler = UniPCMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    os.makedirs(os.path.join(out, 'diffusers'), exist_ok=True)
    times = []
    for c in cases:
        pipe.controlnet = nets[c['type']]
        control = Image.open(os.path.join(out, c['control'])).convert('RGB')
        t0 = time.time()
        with torch.no_grad():
            img = pipe(c['prompt'], image=control, num_inference_steps=c['steps'], guidance_scale=c['guidance'],
                       negative_prompt='', controlnet_conditioning_scale=c['scale'], width=dataset.SIZE,
                       height=dataset.SIZE, generator=torch.Generator('cpu').manual_seed(c['seed']),
                       output_type='np').images[0]
        times.append(time.time() - t0)
        img.astype(np.float32).tofile(os.path.join(out, 'diffusers', f"{c['name']}.f32"))
    print(f'{len(cases)} cases; diffusers seconds per image: median {np.median(times):.2f}')


def nearest_colour(rgb) -> str:
    names = list(dataset.COLOURS)
    d = [np.sum((np.asarray(rgb, float) - dataset.COLOURS[n]) ** 2) for n in names]
    return names[int(np.argmin(d))]


def scores(img: np.ndarray, s: dataset.Sample) -> dict:
    """img: [H,W,3] uint8."""
    k5 = np.ones((5, 5), np.uint8)
    mask = s.mask.astype(np.uint8)
    inner = cv2.erode(mask, k5).astype(bool)
    outer = ~cv2.dilate(mask, k5).astype(bool)
    shape_mean, bg_mean = img[inner].mean(0), img[outer].mean(0)
    a = cv2.dilate(dataset.canny(img), k5) > 0
    b = cv2.dilate(dataset.canny(s.image), k5) > 0
    return {
        'shape_ok': nearest_colour(shape_mean) == s.colour,
        'background_ok': nearest_colour(bg_mean) == s.background,
        'shape_error': float(np.linalg.norm(shape_mean - dataset.COLOURS[s.colour])),
        'background_error': float(np.linalg.norm(bg_mean - dataset.COLOURS[s.background])),
        'edge_iou': float((a & b).sum() / max(1, (a | b).sum())),
    }


def score(out: str) -> None:
    cases = json.load(open(os.path.join(out, 'cases.json')))['cases']
    size = dataset.SIZE
    rows, result = [], {}
    groups = {}
    max_diff = 0.0
    for c in cases:
        s = dataset.sample(EVAL_SEED, c['index'])
        for backend in ('ours', 'diffusers'):
            f = os.path.join(out, backend, f"{c['name']}.f32")
            if not os.path.exists(f):
                continue
            x = np.fromfile(f, np.float32).reshape(size, size, 3)
            r = scores(np.round(x * 255).astype(np.uint8), s)
            result[f"{backend}/{c['name']}"] = r
            groups.setdefault((c['type'], c['scale'], backend), []).append(r)
        f1, f2 = (os.path.join(out, b, f"{c['name']}.f32") for b in ('ours', 'diffusers'))
        if os.path.exists(f1) and os.path.exists(f2):
            max_diff = max(max_diff, float(np.abs(np.fromfile(f1, np.float32) - np.fromfile(f2, np.float32)).max()))
    print('| control | scale | through | shape colour | background colour | shape colour error | edge IoU (2 px) |')
    print('| --- | --- | --- | --- | --- | --- | --- |')
    for (kind, scale, backend), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1], kv[0][2])):
        n = len(rs)
        row = {
            'cases': n, 'shape_accuracy': sum(r['shape_ok'] for r in rs) / n,
            'background_accuracy': sum(r['background_ok'] for r in rs) / n,
            'shape_error': float(np.mean([r['shape_error'] for r in rs])),
            'edge_iou': float(np.mean([r['edge_iou'] for r in rs])),
        }
        rows.append({'type': kind, 'scale': scale, 'backend': backend, **row})
        print(f"| {kind} | {scale:g} | {backend} | {row['shape_accuracy']:.0%} ({sum(r['shape_ok'] for r in rs)}/{n}) | "
              f"{row['background_accuracy']:.0%} | {row['shape_error']:.0f} | {row['edge_iou']:.2f} |")
    print(f'max |ours - diffusers| over all pixels (0..1 scale): {max_diff:.2e}')
    with open(os.path.join(out, 'scores.json'), 'w') as f:
        json.dump({'rows': rows, 'max_abs_diff': max_diff, 'cases': result}, f, indent=1)


if __name__ == '__main__':
    cmd, out = sys.argv[1], sys.argv[2]
    if cmd == 'cases':
        write_cases(out)
    elif cmd == 'diffusers':
        run_diffusers(out, sys.argv[3] if len(sys.argv) > 3 else DEFAULT_MODEL)
    elif cmd == 'score':
        score(out)
    else:
        raise SystemExit(f'unknown command {cmd}')
