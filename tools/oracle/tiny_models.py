"""Tiny random-weight SD 1.x / 2.x networks (diffusers folders, safetensors) and their forward outputs.

Writes tests/fixtures/tiny/:
  sd15/{unet,text_encoder,vae,scheduler}/ + model_index.json  the tiny SD 1.5-style base model
  unet-sd2/            an SD 2.x-style UNet (linear projection, per-block head counts, upcast_attention)
  vae-fp16/            the VAE again, stored only as the fp16 variant
  controlnet/          a ControlNet matching sd15's UNet; controlnet-pool/ with global_pool_conditions
  *.json/.bin          forward fixtures on fixed inputs (read by tests/engine/models/*.test.ts)

Every parameter is re-drawn at random (diffusers zero-initialises ControlNet's output convs, and norms start
at ones/zeros, which would make comparisons blind to those weights). Text encoders use vocab_size 1000 and
the fixtures use token ids < 1000, so the fixtures stay small.
"""
import copy, os, json, math
import numpy as np
import torch
from common import save_fixture, FIXTURES
from diffusers import UNet2DConditionModel, ControlNetModel, AutoencoderKL
from transformers import CLIPTextConfig, CLIPTextModel

torch.set_grad_enabled(False)
OUT = os.path.join(FIXTURES, 'tiny')


def randomize(model, seed):
    """Re-draws every parameter: weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1), norm scales ~ 1 + N(0, 0.1)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if p.dim() > 1:
            fan_in = p[0].numel()
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
        elif name.endswith('weight'):
            p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def round_fp16(model):
    """For models stored as fp16 files: the reference runs on the same fp16-rounded weights, in fp32."""
    for p in model.parameters():
        p.copy_(p.half().float())
    return model


def save_fp16(model, path):
    model.half().save_pretrained(path, variant='fp16')
    model.float()


def randn(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


UNET_SD15 = dict(
    sample_size=8, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(32, 64),
    down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'), up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D'),
    cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32,
)
UNET_SD2 = dict(
    sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
    down_block_types=('CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'),
    up_block_types=('CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'),
    cross_attention_dim=48, attention_head_dim=[2, 4], use_linear_projection=True, upcast_attention=True,
    transformer_layers_per_block=[1, 2], norm_num_groups=8,
)
CONTROLNET = dict(
    in_channels=4, layers_per_block=2, block_out_channels=(32, 64),
    down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'), cross_attention_dim=32, attention_head_dim=8,
    norm_num_groups=32, conditioning_embedding_out_channels=(16, 32),
)
VAE = dict(
    in_channels=3, out_channels=3, block_out_channels=(16, 32), latent_channels=4, layers_per_block=1,
    down_block_types=('DownEncoderBlock2D', 'DownEncoderBlock2D'), up_block_types=('UpDecoderBlock2D', 'UpDecoderBlock2D'),
    norm_num_groups=8, sample_size=16,
)
# A smaller ControlNet for the global_pool_conditions variant (its outputs are only compared, not fed to a UNet).
CONTROLNET_POOL = dict(
    in_channels=4, layers_per_block=1, block_out_channels=(16, 32),
    down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'), cross_attention_dim=32, attention_head_dim=4,
    norm_num_groups=8, conditioning_embedding_out_channels=(8, 16), global_pool_conditions=True,
)
CLIP = dict(
    vocab_size=1000, hidden_size=32, intermediate_size=37, num_hidden_layers=5, num_attention_heads=4,
    max_position_embeddings=77, hidden_act='quick_gelu', projection_dim=32, bos_token_id=0, eos_token_id=2,
    pad_token_id=1,
)
SCHEDULER_SD15 = {
    '_class_name': 'PNDMScheduler', '_diffusers_version': '0.6.0', 'beta_end': 0.012, 'beta_schedule': 'scaled_linear',
    'beta_start': 0.00085, 'num_train_timesteps': 1000, 'set_alpha_to_one': False, 'skip_prk_steps': True,
    'steps_offset': 1, 'trained_betas': None, 'clip_sample': False,
}


def main():
    os.makedirs(OUT, exist_ok=True)
    B = 2
    # ---- models
    # The two largest are stored only as fp16 variants (halves the fixture size; tests fp16 upcasting).
    unet = round_fp16(randomize(UNet2DConditionModel(**UNET_SD15), 1))
    save_fp16(unet, os.path.join(OUT, 'sd15', 'unet'))
    unet2 = round_fp16(randomize(UNet2DConditionModel(**UNET_SD2), 2))
    save_fp16(unet2, os.path.join(OUT, 'unet-sd2'))
    cn = round_fp16(randomize(ControlNetModel(**CONTROLNET), 3))
    save_fp16(cn, os.path.join(OUT, 'controlnet'))
    cnp = randomize(ControlNetModel(**CONTROLNET_POOL), 4)
    cnp.save_pretrained(os.path.join(OUT, 'controlnet-pool'))
    vae = randomize(AutoencoderKL(**VAE), 5)
    vae.save_pretrained(os.path.join(OUT, 'sd15', 'vae'))
    torch.manual_seed(0)
    clip = randomize(CLIPTextModel(CLIPTextConfig(**CLIP)), 6)
    clip.save_pretrained(os.path.join(OUT, 'sd15', 'text_encoder'))
    vae16 = round_fp16(copy.deepcopy(vae))
    save_fp16(vae16, os.path.join(OUT, 'vae-fp16'))  # vae16 holds the fp16-rounded copy
    os.makedirs(os.path.join(OUT, 'sd15', 'scheduler'), exist_ok=True)
    with open(os.path.join(OUT, 'sd15', 'scheduler', 'scheduler_config.json'), 'w') as f:
        json.dump(SCHEDULER_SD15, f, indent=2)
    with open(os.path.join(OUT, 'sd15', 'model_index.json'), 'w') as f:
        json.dump({'_class_name': 'StableDiffusionPipeline', '_diffusers_version': '0.42.1',
                   'scheduler': ['diffusers', 'PNDMScheduler'], 'text_encoder': ['transformers', 'CLIPTextModel'],
                   'tokenizer': ['transformers', 'CLIPTokenizer'], 'unet': ['diffusers', 'UNet2DConditionModel'],
                   'vae': ['diffusers', 'AutoencoderKL']}, f, indent=2)

    # ---- CLIP: last layer and clip skip 1, 2 (diffusers: hidden_states[-(k+1)] then final_layer_norm)
    ids = torch.randint(3, 1000, (B, 77), generator=torch.Generator().manual_seed(10))
    ids[:, 0] = 0
    ids[0, 12:] = 2  # eos then padding with eos, as the SD tokenizer pads
    out = clip(ids, output_hidden_states=True)
    clip_t = {'input_ids': ids.to(torch.int64), 'skip0': out.last_hidden_state}
    for k in (1, 2):
        clip_t[f'skip{k}'] = clip.final_layer_norm(out.hidden_states[-(k + 1)])
    save_fixture('tiny/clip_fwd', clip_t, {'config': CLIP})

    # ---- UNet SD1.5: plain, long prompt (S = 154), with ControlNet residuals
    sample = randn(B, 4, 8, 8, seed=11)
    t = torch.tensor([999.0, 10.5])
    ehs = randn(B, 77, 32, seed=12)
    ehs_long = randn(B, 154, 32, seed=13)
    cond = torch.rand(B, 3, 16, 16, generator=torch.Generator().manual_seed(14))
    u = {'sample': sample, 'timestep': t, 'encoder_hidden_states': ehs, 'encoder_hidden_states_long': ehs_long,
         'controlnet_cond': cond}
    u['out'] = unet(sample, t, ehs).sample
    u['out_long'] = unet(sample, t, ehs_long).sample
    scales = torch.full((7,), 0.8)
    guess = torch.logspace(-1, 0, 7) * 0.8
    u['scales'] = scales
    u['scales_guess'] = guess
    down, mid = cn(sample, t, ehs, cond, conditioning_scale=0.8, return_dict=False)
    for i, d in enumerate(down):
        u[f'cn_down_{i}'] = d
    u['cn_mid'] = mid
    down_g, mid_g = cn(sample, t, ehs, cond, conditioning_scale=0.8, guess_mode=True, return_dict=False)
    for i, d in enumerate(down_g):
        u[f'cn_guess_down_{i}'] = d
    u['cn_guess_mid'] = mid_g
    downp, midp = cnp(sample, t, ehs, cond, conditioning_scale=0.8, return_dict=False)
    for i, d in enumerate(downp):
        u[f'cnpool_down_{i}'] = d
    u['cnpool_mid'] = midp
    u['out_with_cn'] = unet(sample, t, ehs, down_block_additional_residuals=down,
                            mid_block_additional_residual=mid).sample
    save_fixture('tiny/unet_fwd', u)

    # ---- UNet SD2.x style
    ehs2 = randn(B, 77, 48, seed=15)
    save_fixture('tiny/unet_sd2_fwd', {'sample': sample, 'timestep': t, 'encoder_hidden_states': ehs2,
                                       'out': unet2(sample, t, ehs2).sample})

    # ---- VAE: encoder mean/std, decoder, tiled decode (tile 8 latent / 16 px), fp16 variant decode
    img = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(16)) * 2 - 1
    dist = vae.encode(img).latent_dist
    lat = randn(1, 4, 8, 12, seed=17)
    v = {'image': img, 'mean': dist.mean, 'std': dist.std, 'latent': lat, 'decoded': vae.decode(lat).sample,
         'decoded_fp16': vae16.decode(lat).sample}
    big = randn(1, 4, 20, 14, seed=18)
    vae.enable_tiling()
    v['big_latent'] = big
    v['big_tiled'] = vae.decode(big).sample
    vae.disable_tiling()
    save_fixture('tiny/vae_fwd', v, {'tile_latent_min_size': vae.tile_latent_min_size,
                                     'tile_sample_min_size': vae.tile_sample_min_size})

    lora_fixtures(unet, clip, sample, t, ehs, ids)


def lora_fixtures(unet, clip, sample, t, ehs, ids):
    """Random LoRA (rank 2) on a few slots of each kind, merged into a copy of the weights: W' = W + up @ down."""
    slots_unet = [
        'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight',
        'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight',
        'down_blocks.0.attentions.1.transformer_blocks.0.ff.net.0.proj.weight',
        'up_blocks.1.attentions.2.transformer_blocks.0.attn1.to_out.0.weight',
        'up_blocks.1.attentions.0.proj_in.weight',
        'mid_block.attentions.0.proj_out.weight',
        'down_blocks.1.resnets.0.conv1.weight',
        'down_blocks.1.resnets.0.conv_shortcut.weight',
        'up_blocks.0.resnets.1.time_emb_proj.weight',
        'down_blocks.0.downsamplers.0.conv.weight',
        'up_blocks.0.upsamplers.0.conv.weight',
    ]
    slots_clip = [
        'text_model.encoder.layers.0.self_attn.q_proj.weight',
        'text_model.encoder.layers.3.self_attn.out_proj.weight',
        'text_model.encoder.layers.4.mlp.fc1.weight',
    ]
    g = torch.Generator().manual_seed(20)
    r = 2

    def merged(model, slots):
        m = copy.deepcopy(model)
        sd = m.state_dict()
        tensors = {}
        for name in slots:
            # transformers 5 dropped CLIPTextModel's `text_model.` prefix; slot names keep the checkpoint form
            w = sd[name if name in sd else name.removeprefix('text_model.')]
            out_f, in_f = w.shape[0], w.shape[1]
            k = w.shape[2:] if w.dim() == 4 else ()
            down = torch.randn((r, in_f, *k), generator=g) * 0.3
            up = torch.randn((out_f, r, *([1, 1] if k else [])), generator=g) * 0.3
            delta = (up.reshape(out_f, r) @ down.reshape(r, -1)).reshape(w.shape)
            sd[name if name in sd else name.removeprefix('text_model.')] = w + delta
            tensors[name + '.lora_down'] = down
            tensors[name + '.lora_up'] = up
        m.load_state_dict(sd)
        return m, tensors

    mu, tu = merged(unet, slots_unet)
    tu['out'] = mu(sample, t, ehs).sample
    save_fixture('tiny/unet_lora_fwd', tu, {'slots': slots_unet})
    mc, tc = merged(clip, slots_clip)
    out = mc(ids, output_hidden_states=True)
    tc['skip0'] = out.last_hidden_state
    tc['skip1'] = mc.final_layer_norm(out.hidden_states[-2])
    save_fixture('tiny/clip_lora_fwd', tc, {'slots': slots_clip})


if __name__ == '__main__':
    main()
