"""End-to-end references for the generation pipeline: diffusers' ControlNet pipelines on the tiny models.

Reads the tiny SD 1.5-style model written by tiny_models.py (tests/fixtures/tiny/sd15, controlnet/), adds what
only the pipeline tests need (a second ControlNet, a second VAE, two LoRAs, a 1000-token CLIP tokenizer), runs
StableDiffusionControlNet{,Img2Img,Inpaint}Pipeline for each case and writes the images (output_type="np",
float32 in [0, 1]) with the inputs to tests/fixtures/pipeline/.
"""
import json, os, shutil, sys
import numpy as np
import torch
from PIL import Image
from common import save_fixture, FIXTURES, ROOT
sys.path.insert(0, os.path.dirname(__file__))
from tiny_models import randomize, CONTROLNET, VAE  # the same random init and configs as the tiny models

from diffusers import (AutoencoderKL, ControlNetModel, UNet2DConditionModel, StableDiffusionControlNetPipeline,
                       StableDiffusionControlNetImg2ImgPipeline, StableDiffusionControlNetInpaintPipeline,
                       DDIMScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler,
                       UniPCMultistepScheduler, EulerDiscreteScheduler)
from transformers import CLIPTextModel, CLIPTokenizer

torch.set_grad_enabled(False)
TINY = os.path.join(FIXTURES, 'tiny')
OUT = os.path.join(FIXTURES, 'pipeline')
TOKENIZER = os.path.join(ROOT, 'assets', 'tokenizer', 'tiny-clip-1000')
W = H = 32


def tiny_tokenizer():
    """CLIP's own BPE cut to its first 486 merges: 256 bytes + 256 end-of-word bytes + 486 merges + 2 specials = 1000."""
    src = os.path.join(ROOT, 'assets', 'tokenizer', 'clip-vit-large-patch14')
    merges = open(os.path.join(src, 'merges.txt'), encoding='utf-8').read().split('\n')
    header, merges = merges[0], [m for m in merges[1:] if m][:486]
    vocab_full = json.load(open(os.path.join(src, 'vocab.json'), encoding='utf-8'))
    base = sorted(vocab_full.items(), key=lambda kv: kv[1])[:512]  # byte chars, then byte chars + </w>
    tokens = [t for t, _ in base] + [''.join(m.split(' ')) for m in merges] + ['<|startoftext|>', '<|endoftext|>']
    os.makedirs(TOKENIZER, exist_ok=True)
    with open(os.path.join(TOKENIZER, 'vocab.json'), 'w', encoding='utf-8') as f:
        json.dump({t: i for i, t in enumerate(tokens)}, f, ensure_ascii=False)
    with open(os.path.join(TOKENIZER, 'merges.txt'), 'w', encoding='utf-8') as f:
        f.write(header + '\n' + '\n'.join(merges) + '\n')
    # SD 1.5's tokenizer settings: 77 tokens, padded with <|endoftext|>
    config = {'model_max_length': 77, 'do_lower_case': True, 'pad_token': '<|endoftext|>', 'bos_token': '<|startoftext|>',
              'eos_token': '<|endoftext|>', 'unk_token': '<|endoftext|>', 'tokenizer_class': 'CLIPTokenizer'}
    with open(os.path.join(TOKENIZER, 'tokenizer_config.json'), 'w') as f:
        json.dump(config, f, indent=1)
    tok = CLIPTokenizer.from_pretrained(TOKENIZER)
    assert len(tok) == 1000, len(tok)
    return tok


def image(seed, smooth=False):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    if smooth:  # blocky shapes: a mask or an init image with structure
        a = np.kron(rng.integers(0, 256, (H // 8, W // 8, 3), dtype=np.uint8), np.ones((8, 8, 1), dtype=np.uint8))
    return a


def lora_file(unet, text_encoder, seed, path):
    """A diffusers-format LoRA (rank 4 on attention of UNet and text encoder) with random, non-zero weights."""
    from peft import LoraConfig, get_peft_model_state_dict
    unet, text_encoder = unet.__class__.from_config(unet.config), text_encoder.__class__(text_encoder.config)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=8, target_modules=['to_q', 'to_k', 'to_v', 'to_out.0'], init_lora_weights=False))
    text_encoder.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=['q_proj', 'k_proj', 'v_proj', 'out_proj'], init_lora_weights=False))
    g = torch.Generator().manual_seed(seed)
    for model in (unet, text_encoder):
        for n, p in model.named_parameters():
            if 'lora_' in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    StableDiffusionControlNetPipeline.save_lora_weights(
        path, unet_lora_layers=get_peft_model_state_dict(unet), text_encoder_lora_layers=get_peft_model_state_dict(text_encoder),
        weight_name='lora.safetensors', safe_serialization=True)


def load(cls, path):
    """Loads a tiny model stored either plain or as the fp16 variant, in float32."""
    variant = 'fp16' if any('.fp16.' in f for f in os.listdir(path)) else None
    return cls.from_pretrained(path, variant=variant).float().eval()


def main():
    os.makedirs(OUT, exist_ok=True)
    tok = tiny_tokenizer()
    base = os.path.join(TINY, 'sd15')
    unet = load(UNet2DConditionModel, os.path.join(base, 'unet'))
    text_encoder = load(CLIPTextModel, os.path.join(base, 'text_encoder'))
    # diffusers 0.42 reaches the final LayerNorm as text_encoder.text_model.final_layer_norm (transformers 4
    # layout); transformers 5 keeps it on the model itself. Alias without registering a submodule.
    object.__setattr__(text_encoder, 'text_model', text_encoder)
    vae = load(AutoencoderKL, os.path.join(base, 'vae'))
    cn_a = load(ControlNetModel, os.path.join(TINY, 'controlnet'))
    cn_b = randomize(ControlNetModel(**CONTROLNET), 501)
    cn_b.save_pretrained(os.path.join(OUT, 'controlnet-b'))
    vae_alt = randomize(AutoencoderKL(**VAE), 502)
    vae_alt.save_pretrained(os.path.join(OUT, 'vae-alt'))
    for name, seed in (('lora-a', 601), ('lora-b', 602)):
        lora_file(unet, text_encoder, seed, os.path.join(OUT, name))
    sched_config = json.load(open(os.path.join(base, 'scheduler', 'scheduler_config.json')))

    control, control2, init, mask = image(1), image(2), image(3, smooth=True), image(4, smooth=True)
    inputs = {'control': control, 'control2': control2, 'init': init, 'mask': mask}
    pil = {k: Image.fromarray(v) for k, v in inputs.items()}

    def make(cls, controlnet, scheduler_cls, **sched_kwargs):
        pipe = cls(vae=vae, text_encoder=text_encoder, tokenizer=tok, unet=unet, controlnet=controlnet,
                   scheduler=scheduler_cls.from_config(sched_config, **sched_kwargs), safety_checker=None,
                   feature_extractor=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    common = dict(prompt='a red house by the lake', negative_prompt='blurry, low quality', height=H, width=W,
                  output_type='np')
    cases = {}

    def run(name, pipe, seed, meta, **kw):
        # always explicit: the img2img and inpaint pipelines default to 0.8 and 0.5, SPEC's default is 1.0
        scales = meta['scales']
        args = {**common, 'controlnet_conditioning_scale': scales if len(scales) > 1 else scales[0], **kw}
        out = pipe(generator=torch.Generator('cpu').manual_seed(seed), **args).images
        cases[name] = {'seed': seed, **meta}
        return out

    t = {}
    # txt2img, one ControlNet, 2 samples, the default scheduler (UniPC) with Karras sigmas off
    p = make(StableDiffusionControlNetPipeline, cn_a, UniPCMultistepScheduler)
    t['txt2img'] = run('txt2img', p, 42, {'scheduler': 'UniPCMultistepScheduler', 'steps': 4, 'samples': 2, 'guidance': 7.5, 'scales': [1.0]},
                       image=pil['control'], num_inference_steps=4, num_images_per_prompt=2, guidance_scale=7.5)
    # multi-ControlNet with per-unit scales, a stochastic scheduler
    p = make(StableDiffusionControlNetPipeline, [cn_a, cn_b], EulerAncestralDiscreteScheduler)
    t['multi'] = run('multi', p, 7, {'scheduler': 'EulerAncestralDiscreteScheduler', 'steps': 5, 'samples': 1, 'guidance': 6.0, 'scales': [0.8, 0.5]},
                     image=[pil['control'], pil['control2']], controlnet_conditioning_scale=[0.8, 0.5], num_inference_steps=5, guidance_scale=6.0)
    # img2img
    p = make(StableDiffusionControlNetImg2ImgPipeline, cn_a, DPMSolverMultistepScheduler)
    t['img2img'] = run('img2img', p, 11, {'scheduler': 'DPMSolverMultistepScheduler', 'steps': 6, 'samples': 1, 'guidance': 7.5, 'scales': [1.0], 'strength': 0.6},
                       image=pil['init'], control_image=pil['control'], strength=0.6, num_inference_steps=6, guidance_scale=7.5)
    # inpaint (strength 1 and 0.75), the inpaint ControlNet's hint: init with masked pixels at -1
    hint = np.asarray(pil['init']).astype(np.float32) / 255.0
    m = np.asarray(pil['mask'].convert('L')).astype(np.float32) / 255.0
    hint[m > 0.5] = -1.0
    hint_t = torch.from_numpy(hint.transpose(2, 0, 1)[None].copy())
    p = make(StableDiffusionControlNetInpaintPipeline, cn_a, DDIMScheduler)
    for name, strength, seed in (('inpaint', 1.0, 5), ('inpaint_075', 0.75, 6)):
        t[name] = run(name, p, seed, {'scheduler': 'DDIMScheduler', 'steps': 5, 'samples': 1, 'guidance': 7.5, 'scales': [1.0], 'strength': strength, 'inpaint': True},
                      image=pil['init'], mask_image=pil['mask'], control_image=hint_t, strength=strength, num_inference_steps=5, guidance_scale=7.5)
    # guess mode
    p = make(StableDiffusionControlNetPipeline, cn_a, EulerDiscreteScheduler)
    t['guess'] = run('guess', p, 3, {'scheduler': 'EulerDiscreteScheduler', 'steps': 4, 'samples': 1, 'guidance': 5.0, 'scales': [0.9], 'guess_mode': True},
                     image=pil['control'], guess_mode=True, controlnet_conditioning_scale=0.9, num_inference_steps=4, guidance_scale=5.0)
    # clip skip 2 (SPEC's clip_skip=2 is diffusers' clip_skip=1)
    p = make(StableDiffusionControlNetPipeline, cn_a, DDIMScheduler)
    t['clip_skip'] = run('clip_skip', p, 8, {'scheduler': 'DDIMScheduler', 'steps': 4, 'samples': 1, 'guidance': 7.5, 'scales': [1.0], 'clip_skip': 2},
                         image=pil['control'], clip_skip=1, num_inference_steps=4, guidance_scale=7.5)
    # custom VAE
    p = make(StableDiffusionControlNetPipeline, cn_a, DDIMScheduler)
    p.vae = vae_alt
    t['vae'] = run('vae', p, 9, {'scheduler': 'DDIMScheduler', 'steps': 4, 'samples': 1, 'guidance': 7.5, 'scales': [1.0], 'vae': 'vae-alt'},
                   image=pil['control'], num_inference_steps=4, guidance_scale=7.5)
    # two LoRAs with strengths (diffusers' load_lora_weights + set_adapters)
    p = make(StableDiffusionControlNetPipeline, cn_a, DDIMScheduler)
    p.load_lora_weights(os.path.join(OUT, 'lora-a'), weight_name='lora.safetensors', adapter_name='a')
    p.load_lora_weights(os.path.join(OUT, 'lora-b'), weight_name='lora.safetensors', adapter_name='b')
    p.set_adapters(['a', 'b'], adapter_weights=[0.7, 0.4])
    t['lora'] = run('lora', p, 10, {'scheduler': 'DDIMScheduler', 'steps': 4, 'samples': 1, 'guidance': 7.5, 'scales': [1.0], 'loras': [['lora-a', 0.7], ['lora-b', 0.4]]},
                    image=pil['control'], num_inference_steps=4, guidance_scale=7.5)
    p.unload_lora_weights()
    # ToMe (tomesd with use_rand off)
    import tomesd
    p = make(StableDiffusionControlNetPipeline, cn_a, DDIMScheduler)
    tomesd.apply_patch(p, ratio=0.5, max_downsample=1, sx=2, sy=2, use_rand=False)
    t['tome'] = run('tome', p, 12, {'scheduler': 'DDIMScheduler', 'steps': 4, 'samples': 1, 'guidance': 7.5, 'scales': [1.0], 'tome': True},
                    image=pil['control'], num_inference_steps=4, guidance_scale=7.5)
    tomesd.remove_patch(p)

    # tiled VAE decoding (diffusers' enable_tiling): the tiny VAE's sample_size 16 makes 32x32 images decode in tiles
    p = make(StableDiffusionControlNetPipeline, cn_a, DDIMScheduler)
    p.vae.enable_tiling()
    t['tiled'] = run('tiled', p, 13, {'scheduler': 'DDIMScheduler', 'steps': 4, 'samples': 1, 'guidance': 7.5, 'scales': [1.0], 'tiled_vae': True},
                     image=pil['control'], num_inference_steps=4, guidance_scale=7.5)
    p.vae.disable_tiling()
    t['untiled'] = run('untiled', p, 13, {'scheduler': 'DDIMScheduler', 'steps': 4, 'samples': 1, 'guidance': 7.5, 'scales': [1.0]},
                       image=pil['control'], num_inference_steps=4, guidance_scale=7.5)

    tensors = {f'input.{k}': v for k, v in inputs.items()}
    tensors.update({f'out.{k}': v.astype(np.float32) for k, v in t.items()})
    save_fixture('pipeline/cases', tensors, {'cases': cases, 'prompt': common['prompt'], 'negative_prompt': common['negative_prompt'],
                                             'width': W, 'height': H})
    print('cases:', ', '.join(cases))


if __name__ == '__main__':
    main()
