"""SD 2.x single-file checkpoints (OpenCLIP text encoder), checked against diffusers' from_single_file.

Run after checkpoints.py (it reuses its diffusers→LDM names). Writes, under tests/fixtures/weights/single-file/:
- sd2-vpred.safetensors (fp16) + sd2-vpred.yaml: a tiny random SD 2.x model in the original LDM layout, its text
  encoder in OpenCLIP's layout (cond_stage_model.model.: token_embedding, positional_embedding, transformer.resblocks.N
  with fused attn.in_proj_weight, ln_1/ln_2, mlp.c_fc/c_proj, ln_final, text_projection, logit_scale; 3 resblocks of
  which SD 2.x uses 2, the penultimate layer), and its LDM config as A1111 keeps it beside the file (v2-inference-v.yaml
  with tiny widths: parameterization v, unet_config with num_head_channels and use_linear_in_transformer,
  first_stage_config, cond_stage_config FrozenOpenCLIPEmbedder layer penultimate).
  The committed file's token embedding has 1000 rows; the model is the file with that embedding tiled to CLIP's 49408
  rows (row i = row i mod 1000), so that it runs with the real CLIP vocabulary (assets/tokenizer/clip-vit-large-patch14,
  padded with "!" as stabilityai/stable-diffusion-2's tokenizer) without a 12 MB fixture. The TypeScript tests tile it
  the same way (tileTokenEmbedding); diffusers read the tiled file here.
- sd2-vpred.expected.json: what diffusers infers (infer_diffusers_model_type, create_unet_diffusers_config_from_ldm;
  the model type is "v1" for this tiny file, as diffusers looks for a 1024-wide attn2.to_k at input_blocks.2, which
  only full-size SD 2.x files have: sd21-keys.json checks "v2"; the OpenCLIP keys choose its text-encoder converter),
  the configs and state dicts (names, shapes, sha256 of the float32 values) from_single_file loads, with
  original_config=the .yaml and config=a local folder (offline: nothing is fetched);
- sd2-vpred.bin/.json (save_fixture): token ids and the text encoder's last hidden state for a prompt and the empty
  negative prompt, and a StableDiffusionPipeline.from_single_file generation (DDIM, v_prediction, 4 steps, 32x32).
- sd21-keys.json: the LDM names and shapes of a full-size SD 2.1 single file (UNet, VAE, OpenCLIP ViT-H text
  encoder with its 24 resblocks), built on the meta device, and diffusers' model type for them: the TypeScript test
  reads the SD 2.1 configs back from these shapes without a sidecar.
"""
import json, os, shutil, tempfile
import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file
from checkpoints import assert_same, digest, hub_names, ldm_unet_name, ldm_unet_upsampler, ldm_vae_name, plain, randomize
from common import FIXTURES, ROOT, save_fixture

OUT = os.path.join(FIXTURES, 'weights', 'single-file')
CLIP_TOKENIZER = os.path.join(ROOT, 'assets', 'tokenizer', 'clip-vit-large-patch14')
VOCAB, ROWS = 49408, 1000
WIDTH, INNER, RESBLOCKS = 128, 256, 3  # OpenCLIP: heads = width / 64
UNET = dict(sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
            down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'), up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D'),
            cross_attention_dim=WIDTH, attention_head_dim=[2, 4], use_linear_projection=True, norm_num_groups=32)
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 32), layers_per_block=1,
           down_block_types=('DownEncoderBlock2D',) * 2, up_block_types=('UpDecoderBlock2D',) * 2, norm_num_groups=32)
PROMPT, NEGATIVE = 'a red lighthouse on a cliff, (oil painting)', ''
H = W = 32
STEPS, SEED, GUIDANCE = 4, 7, 7.5

# The tiny model's LDM config, in the shape of Stability's v2-inference-v.yaml.
LDM_CONFIG = {'model': {
    'target': 'ldm.models.diffusion.ddpm.LatentDiffusion',
    'params': {
        'parameterization': 'v', 'linear_start': 0.00085, 'linear_end': 0.012, 'num_timesteps_cond': 1, 'log_every_t': 200,
        'timesteps': 1000, 'first_stage_key': 'jpg', 'cond_stage_key': 'txt', 'image_size': 8, 'channels': 4,
        'cond_stage_trainable': False, 'conditioning_key': 'crossattn', 'monitor': 'val/loss_simple_ema', 'scale_factor': 0.18215,
        'use_ema': False,
        'unet_config': {'target': 'ldm.modules.diffusionmodules.openaimodel.UNetModel', 'params': {
            'use_checkpoint': True, 'use_fp16': True, 'image_size': 32, 'in_channels': 4, 'out_channels': 4, 'model_channels': 32,
            'attention_resolutions': [1], 'num_res_blocks': 1, 'channel_mult': [1, 2], 'num_head_channels': 16,
            'use_linear_in_transformer': True, 'transformer_depth': 1, 'context_dim': WIDTH, 'legacy': False}},
        'first_stage_config': {'target': 'ldm.models.autoencoder.AutoencoderKL', 'params': {
            'embed_dim': 4, 'monitor': 'val/rec_loss',
            'ddconfig': {'double_z': True, 'z_channels': 4, 'resolution': 256, 'in_channels': 3, 'out_ch': 3, 'ch': 32,
                         'ch_mult': [1, 1], 'num_res_blocks': 1, 'attn_resolutions': [], 'dropout': 0.0},
            'lossconfig': {'target': 'torch.nn.Identity'}}},
        'cond_stage_config': {'target': 'ldm.modules.encoders.modules.FrozenOpenCLIPEmbedder',
                              'params': {'freeze': True, 'layer': 'penultimate'}},
    }}}

# stabilityai/stable-diffusion-2-1's scheduler_config.json (DDIM, v-prediction).
SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule='scaled_linear', clip_sample=False, num_train_timesteps=1000,
                 prediction_type='v_prediction', set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1, trained_betas=None)


def open_clip_state(te, extra_block, rows):
    """A CLIPTextModel's weights in OpenCLIP's layout (prefix cond_stage_model.model.), one more resblock on top."""
    sd = {k.removeprefix('text_model.'): v for k, v in te.state_dict().items()}
    out = {'token_embedding.weight': rows, 'positional_embedding': sd['embeddings.position_embedding.weight'],
           'ln_final.weight': sd['final_layer_norm.weight'], 'ln_final.bias': sd['final_layer_norm.bias']}
    layers = te.config.num_hidden_layers
    for i in range(layers + 1):
        src = (lambda n: sd[f'encoder.layers.{i}.{n}']) if i < layers else (lambda n: extra_block[n])
        b = f'transformer.resblocks.{i}.'
        out[b + 'attn.in_proj_weight'] = torch.cat([src(f'self_attn.{p}_proj.weight') for p in 'qkv'])
        out[b + 'attn.in_proj_bias'] = torch.cat([src(f'self_attn.{p}_proj.bias') for p in 'qkv'])
        for ours, theirs in (('self_attn.out_proj', 'attn.out_proj'), ('layer_norm1', 'ln_1'), ('layer_norm2', 'ln_2'),
                             ('mlp.fc1', 'mlp.c_fc'), ('mlp.fc2', 'mlp.c_proj')):
            out[b + theirs + '.weight'] = src(ours + '.weight')
            out[b + theirs + '.bias'] = src(ours + '.bias')
    g = torch.Generator().manual_seed(3)
    out['text_projection'] = torch.randn(WIDTH, 64, generator=g) * 0.5
    out['logit_scale'] = torch.tensor(4.6052)
    return {'cond_stage_model.model.' + k: v for k, v in out.items()}


def ldm_state(unet, vae, te, extra_block, rows, dtype):
    L = UNET['layers_per_block']
    has_attn = ['CrossAttn' in t for t in UNET['up_block_types']]
    out = {}
    for k, v in unet.state_dict().items():
        out['model.diffusion_model.' + (ldm_unet_upsampler(k, L, has_attn) if '.upsamplers.' in k else ldm_unet_name(k, L))] = v
    for k, v in vae.state_dict().items():
        name = ldm_vae_name(k, len(VAE['up_block_types']))
        if '.mid.attn_1.' in name and name.endswith('.weight') and v.ndim == 2:
            v = v[:, :, None, None]
        out['first_stage_model.' + name] = v
    out.update(open_clip_state(te, extra_block, rows))
    return {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in out.items()}


def tiled(single):
    """The committed file → the model: the token embedding's rows repeated to CLIP's vocabulary size."""
    key = 'cond_stage_model.model.token_embedding.weight'
    rows = single[key]
    return {**single, key: rows.repeat((VOCAB + rows.shape[0] - 1) // rows.shape[0], 1)[:VOCAB].contiguous()}


def sd21_keys():
    """LDM names and shapes of a full-size SD 2.1 single file (meta device: no memory, no weights)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type
    from transformers import CLIPTextConfig, CLIPTextModel
    unet_cfg = dict(block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20],
                    layers_per_block=2, use_linear_projection=True,
                    down_block_types=('CrossAttnDownBlock2D',) * 3 + ('DownBlock2D',), up_block_types=('UpBlock2D',) + ('CrossAttnUpBlock2D',) * 3)
    with torch.device('meta'):
        unet = UNet2DConditionModel(**unet_cfg)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=('DownEncoderBlock2D',) * 4,
                            up_block_types=('UpDecoderBlock2D',) * 4, latent_channels=4, layers_per_block=2)
        te = CLIPTextModel(CLIPTextConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                                          vocab_size=VOCAB, hidden_act='gelu'))
    L = 2
    has_attn = [False, True, True, True]
    shapes = {}
    for k, v in unet.state_dict().items():
        shapes['model.diffusion_model.' + (ldm_unet_upsampler(k, L, has_attn) if '.upsamplers.' in k else ldm_unet_name(k, L))] = list(v.shape)
    for k, v in vae.state_dict().items():
        name = ldm_vae_name(k, 4)
        shape = list(v.shape) + ([1, 1] if '.mid.attn_1.' in name and name.endswith('.weight') and v.ndim == 2 else [])
        shapes['first_stage_model.' + name] = shape
    sd = {k.removeprefix('text_model.'): v for k, v in te.state_dict().items()}
    shapes['cond_stage_model.model.token_embedding.weight'] = [VOCAB, 1024]
    shapes['cond_stage_model.model.positional_embedding'] = [77, 1024]
    shapes['cond_stage_model.model.ln_final.weight'] = shapes['cond_stage_model.model.ln_final.bias'] = [1024]
    shapes['cond_stage_model.model.text_projection'] = [1024, 1024]
    shapes['cond_stage_model.model.logit_scale'] = []
    for i in range(24):
        b = f'cond_stage_model.model.transformer.resblocks.{i}.'
        shapes[b + 'attn.in_proj_weight'] = [3072, 1024]
        shapes[b + 'attn.in_proj_bias'] = [3072]
        for ours, theirs in (('self_attn.out_proj', 'attn.out_proj'), ('layer_norm1', 'ln_1'), ('layer_norm2', 'ln_2'),
                             ('mlp.fc1', 'mlp.c_fc'), ('mlp.fc2', 'mlp.c_proj')):
            shapes[b + theirs + '.weight'] = list(sd[f'encoder.layers.{i}.{ours}.weight'].shape)
            shapes[b + theirs + '.bias'] = list(sd[f'encoder.layers.{i}.{ours}.bias'].shape)
    with torch.device('meta'):
        model_type = infer_diffusers_model_type({k: torch.empty(s) for k, s in shapes.items()})
    with open(os.path.join(OUT, 'sd21-keys.json'), 'w') as f:
        json.dump({'diffusers_model_type': model_type, 'shapes': shapes}, f)
    print('sd21 keys', len(shapes), model_type)


def main():
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import create_unet_diffusers_config_from_ldm, infer_diffusers_model_type
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.set_grad_enabled(False)
    torch.manual_seed(12)
    os.makedirs(OUT, exist_ok=True)
    sd21_keys()
    unet = randomize(UNet2DConditionModel(**UNET)).eval()
    vae = randomize(AutoencoderKL(**VAE)).eval()
    te_cfg = CLIPTextConfig(vocab_size=VOCAB, hidden_size=WIDTH, intermediate_size=INNER, num_hidden_layers=RESBLOCKS - 1,
                            num_attention_heads=WIDTH // 64, max_position_embeddings=77, hidden_act='gelu', projection_dim=64,
                            bos_token_id=0, eos_token_id=2, pad_token_id=1)
    te = randomize(CLIPTextModel(te_cfg)).eval()
    extra = randomize(CLIPTextModel(CLIPTextConfig(**{**te_cfg.to_dict(), 'num_hidden_layers': 1}))).state_dict()
    extra = {k.removeprefix('text_model.').removeprefix('encoder.layers.0.'): v for k, v in extra.items()}
    rows = torch.randn(ROWS, WIDTH) * 0.5

    name = 'sd2-vpred'
    path = os.path.join(OUT, name + '.safetensors')
    single = ldm_state(unet, vae, te, extra, rows, torch.float16)
    save_file(single, path)
    yaml_path = os.path.join(OUT, name + '.yaml')
    with open(yaml_path, 'w') as f:
        yaml.safe_dump(LDM_CONFIG, f, sort_keys=False)

    tmp = tempfile.mkdtemp()
    try:
        full = os.path.join(tmp, name + '.safetensors')
        save_file(tiled(load_file(path)), full)
        checkpoint = load_file(full)
        # A local config folder: the tiny text encoder's config, SD 2's tokenizer (CLIP's vocabulary padded with "!")
        # and SD 2.1's scheduler. The UNet and VAE configs come from original_config (the .yaml), as diffusers reads it.
        cfg_dir = os.path.join(tmp, 'config')
        tok = CLIPTokenizer.from_pretrained(CLIP_TOKENIZER, pad_token='!', model_max_length=77)
        StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=DDIMScheduler.from_config(SCHEDULER),
                                safety_checker=None, feature_extractor=None, requires_safety_checker=False).save_pretrained(cfg_dir)
        pipe = StableDiffusionPipeline.from_single_file(full, original_config=yaml_path, config=cfg_dir, local_files_only=True,
                                                        safety_checker=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        assert pipe.tokenizer.pad_token == '!' and pipe.tokenizer.pad_token_id == 0
        ref = lambda sd: {k: v.to(torch.float16).float() for k, v in sd.items()}
        assert_same(pipe.unet.state_dict(), ref(unet.state_dict()), 'unet')
        assert_same(pipe.vae.state_dict(), ref(vae.state_dict()), 'vae')
        te_sd = {k: v for k, v in ref(te.state_dict()).items()}
        te_sd['embeddings.token_embedding.weight'] = tiled({'cond_stage_model.model.token_embedding.weight': rows.half()})['cond_stage_model.model.token_embedding.weight'].float()
        got = pipe.text_encoder.state_dict()
        assert_same({k: got[k] for k in te_sd}, te_sd, 'text encoder')
        assert pipe.scheduler.config.prediction_type == 'v_prediction'
        expected = {
            'diffusers_model_type': infer_diffusers_model_type(checkpoint),
            'unet_config_from_ldm': create_unet_diffusers_config_from_ldm(LDM_CONFIG, checkpoint),
            'configs': {'unet': plain(pipe.unet.config), 'vae': plain(pipe.vae.config), 'text_encoder': pipe.text_encoder.config.to_dict(),
                        'scheduler': plain(pipe.scheduler.config)},
            'unet': digest(pipe.unet.state_dict()), 'vae': digest(pipe.vae.state_dict()),
            'text_encoder': digest(hub_names({k: got[k] for k in te_sd})),
            'tokenizer': {'pad_token': pipe.tokenizer.pad_token, 'pad_token_id': pipe.tokenizer.pad_token_id},
        }
        with open(os.path.join(OUT, name + '.expected.json'), 'w') as f:
            json.dump(expected, f, indent=0, sort_keys=True, default=list)

        ids = pipe.tokenizer([PROMPT, NEGATIVE], padding='max_length', max_length=77, truncation=True, return_tensors='pt').input_ids
        hidden = pipe.text_encoder(ids)[0]
        image = pipe(PROMPT, negative_prompt=NEGATIVE, height=H, width=W, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
                     generator=torch.Generator('cpu').manual_seed(SEED), output_type='np').images
        save_fixture(f'weights/single-file/{name}', {'ids': ids.to(torch.int64), 'hidden': hidden.float(), 'image': image.astype(np.float32)},
                     {'prompt': PROMPT, 'negative_prompt': NEGATIVE, 'height': H, 'width': W, 'steps': STEPS, 'seed': SEED,
                      'guidance': GUIDANCE, 'scheduler': 'DDIMScheduler', 'token_rows': ROWS, 'vocab_size': VOCAB})
        print(name, os.path.getsize(path), 'bytes', expected['diffusers_model_type'], 'image mean', float(image.mean()))
    finally:
        shutil.rmtree(tmp)


if __name__ == '__main__':
    main()
