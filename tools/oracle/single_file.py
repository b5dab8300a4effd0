"""Single-file checkpoints in the layouts users have, checked against diffusers' from_single_file.

Run after checkpoints.py (it reuses its tiny architecture and diffusers→LDM names). Writes, under
tests/fixtures/weights/single-file/:
- sd1-inpainting.safetensors: an SD 1.x inpainting model (UNet conv_in with 9 input channels), fp16;
- sd1-vpred.safetensors (bf16) + sd1-vpred.yaml: a v-prediction SD 1.x model with its LDM config beside it, as
  A1111 reads one (model.params.parameterization: v, the UNet's own unet_config);
- expected.json: per file what diffusers infers (infer_diffusers_model_type; create_unet_diffusers_config_from_ldm
  for the sidecar), whether from_single_file loads it, and the diffusers state dicts it loads (names, shapes,
  sha256 of the float32 values).
EMA-only and EMA-beside-weights files and the .json sidecar are made by the TypeScript test from
sd15-tiny.safetensors (renames only; diffusers cannot load an EMA-only file: its converter reads the UNet from
model.diffusion_model.* and takes the EMA copies only beside them, with extract_ema).
"""
import json, os, shutil, tempfile
import torch
import yaml
from safetensors.torch import save_file, load_file
from checkpoints import (CLIP, UNET, VAE, assert_same, digest, hub_names, ldm_unet_name, ldm_unet_upsampler, ldm_vae_name,
                         plain, randomize)
from common import FIXTURES, ROOT

OUT = os.path.join(FIXTURES, 'weights', 'single-file')

# The tiny UNet's architecture as an LDM config (what create_unet_diffusers_config_from_ldm reads back).
LDM_CONFIG = {
    'model': {
        'target': 'ldm.models.diffusion.ddpm.LatentDiffusion',
        'params': {
            'parameterization': 'v', 'linear_start': 0.00085, 'linear_end': 0.012, 'timesteps': 1000,
            'unet_config': {'target': 'ldm.modules.diffusionmodules.openaimodel.UNetModel', 'params': {
                'in_channels': 4, 'out_channels': 4, 'model_channels': 8, 'attention_resolutions': [1], 'num_res_blocks': 2,
                'channel_mult': [1, 2], 'num_heads': 2, 'transformer_depth': 1, 'context_dim': 8, 'use_linear_in_transformer': False}},
            'first_stage_config': {'params': {'ddconfig': {'ch_mult': [1, 2], 'in_channels': 3, 'out_ch': 3, 'z_channels': 4}}},
        },
    },
}


def to_single(unet, vae, te, dtype):
    L = UNET['layers_per_block']
    has_attn = ['CrossAttn' in t for t in UNET['up_block_types']]
    out = {}
    for k, v in unet.state_dict().items():
        name = ldm_unet_upsampler(k, L, has_attn) if '.upsamplers.' in k else ldm_unet_name(k, L)
        out['model.diffusion_model.' + name] = v.to(dtype)
    for k, v in vae.state_dict().items():
        name = ldm_vae_name(k, len(VAE['up_block_types']))
        v = v.to(dtype)
        if '.mid.attn_1.' in name and name.endswith('.weight') and v.ndim == 2:
            v = v[:, :, None, None]
        out['first_stage_model.' + name] = v
    for k, v in te.state_dict().items():
        out['cond_stage_model.transformer.text_model.' + k] = v.to(dtype) if v.is_floating_point() else v
    return {k: v.contiguous() for k, v in out.items()}


def rounded(sd, dtype):
    return {k: (v.to(dtype).float() if v.is_floating_point() else v) for k, v in sd.items()}


def main():
    from diffusers import (AutoencoderKL, PNDMScheduler, StableDiffusionInpaintPipeline, StableDiffusionPipeline,
                           UNet2DConditionModel)
    from diffusers.loaders.single_file_utils import create_unet_diffusers_config_from_ldm, infer_diffusers_model_type
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(11)
    os.makedirs(OUT, exist_ok=True)
    vae = randomize(AutoencoderKL(**VAE)).eval()
    te = randomize(CLIPTextModel(CLIPTextConfig(**CLIP))).eval()
    tok = CLIPTokenizer.from_pretrained(os.path.join(ROOT, 'assets', 'tokenizer', 'tiny-clip-1000'), model_max_length=77)
    expected = {}
    tmp = tempfile.mkdtemp()
    try:
        cases = [
            ('sd1-inpainting', dict(UNET, in_channels=9), torch.float16, None, StableDiffusionInpaintPipeline),
            ('sd1-vpred', UNET, torch.bfloat16, LDM_CONFIG, StableDiffusionPipeline),
        ]
        for name, unet_cfg, dtype, ldm, cls in cases:
            unet = randomize(UNet2DConditionModel(**unet_cfg)).eval()
            path = os.path.join(OUT, name + '.safetensors')
            single = to_single(unet, vae, te, dtype)
            save_file(single, path)
            sidecar = None
            if ldm is not None:
                sidecar = os.path.join(OUT, name + '.yaml')
                with open(sidecar, 'w') as f:
                    yaml.safe_dump(ldm, f, sort_keys=False)
            checkpoint = load_file(path)
            entry = {'diffusers_model_type': infer_diffusers_model_type(checkpoint), 'dtype': str(dtype).replace('torch.', '')}
            if ldm is not None:
                entry['unet_config_from_ldm'] = create_unet_diffusers_config_from_ldm(ldm, checkpoint)
            # from_single_file with a local config folder (offline: no Hub config fetch)
            cfg_dir = os.path.join(tmp, name)
            sched = PNDMScheduler(skip_prk_steps=True, prediction_type='v_prediction' if ldm else 'epsilon')
            cls(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=sched, safety_checker=None, feature_extractor=None,
                requires_safety_checker=False).save_pretrained(cfg_dir)
            # Not original_config=sidecar: diffusers would build the UNet from it with LDM's GroupNorm(32), which the
            # tiny widths cannot take; its reading of the sidecar is recorded above (unet_config_from_ldm) instead.
            loaded = cls.from_single_file(path, config=cfg_dir, local_files_only=True, safety_checker=None, requires_safety_checker=False)
            assert_same(loaded.unet.state_dict(), rounded(unet.state_dict(), dtype), f'{name} unet')
            assert_same(loaded.vae.state_dict(), rounded(vae.state_dict(), dtype), f'{name} vae')
            got_te = loaded.text_encoder.state_dict()
            ref_te = rounded(te.state_dict(), dtype)
            assert_same({k: got_te[k] for k in ref_te}, ref_te, f'{name} text encoder')
            entry['loaded_by_diffusers'] = {'class': cls.__name__, 'unet_in_channels': loaded.unet.config.in_channels,
                                            'scheduler_prediction_type': loaded.scheduler.config.prediction_type}
            entry['configs'] = {'unet': plain(unet.config), 'vae': plain(vae.config), 'text_encoder': plain(te.config.to_dict())}
            entry['unet'] = digest(rounded(unet.state_dict(), dtype))
            entry['vae'] = digest(rounded(vae.state_dict(), dtype))
            entry['text_encoder'] = digest(hub_names(rounded(te.state_dict(), dtype)))
            expected[name] = entry
            print(name, os.path.getsize(path), 'bytes', entry['diffusers_model_type'])
    finally:
        shutil.rmtree(tmp)
    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=0, sort_keys=True, default=list)


if __name__ == '__main__':
    main()
