"""The inpaint pipeline with an SD inpainting UNet (9 input channels: latents, mask, masked-image latents).

Run after pipeline.py (it reuses its tiny models, inputs and hint). Makes a tiny 9-channel UNet (the tiny UNet with
its conv_in widened to 9 input channels; only that conv_in weight is saved, as unet.conv_in.weight) and runs diffusers' StableDiffusionControlNetInpaintPipeline with it at strength 1 and 0.75 (DDIM, 5 steps), the
same prompt, inputs and inpaint ControlNet hint as pipeline.py's inpaint cases: tests/fixtures/pipeline/inpaint9.*.
"""
import json, os
import numpy as np
import torch
from PIL import Image
from common import FIXTURES, save_fixture
from pipeline import H, TINY, TOKENIZER, W, load
from diffusers import (AutoencoderKL, ControlNetModel, DDIMScheduler, StableDiffusionControlNetInpaintPipeline,
                       UNet2DConditionModel)
from transformers import CLIPTextModel, CLIPTokenizer

OUT = os.path.join(FIXTURES, 'pipeline')


def main():
    torch.set_grad_enabled(False)
    base = os.path.join(TINY, 'sd15')
    cfg = dict(UNet2DConditionModel.load_config(os.path.join(base, 'unet')))
    cfg = {k: v for k, v in cfg.items() if not k.startswith('_')}
    cfg['in_channels'] = 9
    # The tiny UNet's weights with a conv_in over 9 channels: its own 4 latent channels, then 5 new (mask, masked
    # latents) random ones rounded to fp16. Only that conv_in goes into the fixture; the test rebuilds the rest.
    tiny = load(UNet2DConditionModel, os.path.join(base, 'unet'))
    sd = tiny.state_dict()
    g = torch.Generator().manual_seed(909)
    extra = (torch.randn(sd['conv_in.weight'].shape[0], 5, 3, 3, generator=g) * 0.5).half().float()
    sd['conv_in.weight'] = torch.cat([sd['conv_in.weight'], extra], dim=1)
    unet = UNet2DConditionModel(**cfg).eval()
    unet.load_state_dict(sd)
    text_encoder = load(CLIPTextModel, os.path.join(base, 'text_encoder'))
    object.__setattr__(text_encoder, 'text_model', text_encoder)  # as pipeline.py: transformers 5 layout
    vae = load(AutoencoderKL, os.path.join(base, 'vae'))
    cn = load(ControlNetModel, os.path.join(TINY, 'controlnet'))
    tok = CLIPTokenizer.from_pretrained(TOKENIZER)
    sched_config = json.load(open(os.path.join(base, 'scheduler', 'scheduler_config.json')))
    header = json.load(open(os.path.join(OUT, 'cases.json')))
    raw = open(os.path.join(OUT, 'cases.bin'), 'rb').read()

    def tensor(key):
        h = header['tensors'][key]
        return np.frombuffer(raw[h['offset']:h['offset'] + h['length']], dtype=h['dtype']).reshape(h['shape'])

    init, mask = Image.fromarray(tensor('input.init')), Image.fromarray(tensor('input.mask'))
    hint = np.asarray(init).astype(np.float32) / 255.0
    m = np.asarray(mask.convert('L')).astype(np.float32) / 255.0
    hint[m > 0.5] = -1.0
    hint_t = torch.from_numpy(hint.transpose(2, 0, 1)[None].copy())
    pipe = StableDiffusionControlNetInpaintPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tok, unet=unet, controlnet=cn,
                                                    scheduler=DDIMScheduler.from_config(sched_config), safety_checker=None,
                                                    feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    meta = header['meta']
    tensors, cases = {}, {}
    for name, strength, seed in (('inpaint9', 1.0, 21), ('inpaint9_075', 0.75, 22)):
        out = pipe(prompt=meta['prompt'], negative_prompt=meta['negative_prompt'], image=init, mask_image=mask, control_image=hint_t,
                   strength=strength, num_inference_steps=5, guidance_scale=7.5, controlnet_conditioning_scale=1.0, height=H, width=W,
                   output_type='np', generator=torch.Generator('cpu').manual_seed(seed)).images
        tensors[f'out.{name}'] = out.astype(np.float32)
        cases[name] = {'seed': seed, 'scheduler': 'DDIMScheduler', 'steps': 5, 'samples': 1, 'guidance': 7.5, 'scales': [1.0],
                       'strength': strength, 'inpaint': True}
    tensors['unet.conv_in.weight'] = unet.state_dict()['conv_in.weight'].float()
    save_fixture('pipeline/inpaint9', tensors, {'cases': cases})
    print('inpaint9 cases:', ', '.join(cases))


if __name__ == '__main__':
    main()
