"""Weight-file fixtures (tests/fixtures/weights/).

- dtypes.safetensors: one tensor per safetensors dtype (written by the safetensors library) + their float32 values.
- torch .pth/.ckpt files written by torch.save (fp32, fp16, bf16, nested lightning "state_dict", a transposed view,
  two views of one storage) + their values; and malicious pickles (os.system / builtins.eval) that must be refused.
- sd15-tiny.safetensors: a tiny random SD 1.x model (UNet + VAE + CLIP text encoder) written in the original LDM
  single-file layout, and control-tiny.safetensors: a tiny ControlNet in the ControlNet 1.1 single-file layout.
  The LDM names come from our own diffusers→LDM mapping (ldm_name below); diffusers' from_single_file must load
  them back to the identical diffusers state dict, which checks that mapping against diffusers' converter.
  Expected diffusers key → shape + sha256 of the float32 bytes go to <name>.expected.json with the configs.
- sd15-tiny-diffusers/: the same model saved with save_pretrained (a diffusers folder, without tokenizer files).
"""
import hashlib, json, os, re, shutil, tempfile, zipfile
import numpy as np
import torch
from safetensors.torch import save_file
from common import FIXTURES, ROOT, save_fixture

OUT = os.path.join(FIXTURES, 'weights')
torch.manual_seed(0)

# ---------------------------------------------------------------- safetensors dtypes
def dtypes():
    t = {
        'f32': torch.tensor([[1.5, -2.25, 3e-8], [1e30, -0.0, 7.0]], dtype=torch.float32),
        # fp16 edge cases: subnormals, max, -0, inf, nan, one ulp above 1
        'f16': torch.tensor([6e-8, -6.1e-5, 65504.0, -0.0, float('inf'), float('-inf'), float('nan'), 1.0009765625, 0.1], dtype=torch.float16),
        'bf16': torch.tensor([1.0, -3.140625, 1e38, 9.2e-41, float('nan'), float('-inf')], dtype=torch.bfloat16),
        'f64': torch.tensor([0.1, -1e300, 2.5], dtype=torch.float64),
        'i64': torch.tensor([0, -5, 2**40, 77], dtype=torch.int64),
        'i32': torch.tensor([[-2**31, 2**31 - 1]], dtype=torch.int32),
        'i8': torch.tensor([-128, 127, 0], dtype=torch.int8),
        'u8': torch.tensor([0, 255, 128], dtype=torch.uint8),
        'bool': torch.tensor([True, False, True]),
        'scalar': torch.tensor(4.5),
    }
    save_file(t, os.path.join(OUT, 'dtypes.safetensors'), metadata={'format': 'pt'})
    save_fixture('weights/dtypes', {k: v.to(torch.float32) for k, v in t.items()})

# ---------------------------------------------------------------- torch pickles
def pickles():
    a = torch.randn(3, 4)
    base = torch.randn(10)
    sd = {
        'layer.weight': a,
        'layer.bias': torch.randn(4),
        'transposed': torch.randn(4, 3).t(),          # non-contiguous strides
        'view_a': base[2:6],                          # two views of one storage, with offsets
        'view_b': base[5:].view(5, 1),
        'steps': torch.tensor(7, dtype=torch.int64),
        'half': torch.randn(2, 3).half(),
        'bf16': torch.randn(5).bfloat16(),
        'param': torch.nn.Parameter(torch.randn(2, 2)),
    }
    expected = {k: v.detach().to(torch.float32).contiguous() for k, v in sd.items()}
    torch.save(sd, os.path.join(OUT, 'plain.pth'))
    # A lightning checkpoint: tensors under state_dict, plus the usual other entries.
    ckpt = {'epoch': 3, 'global_step': 1200, 'pytorch-lightning_version': '1.4.2',
            'state_dict': {f'model.{k}': v.detach().half() if v.is_floating_point() else v for k, v in sd.items()},
            'callbacks': {"ModelCheckpoint{'monitor': None}": {'best_model_score': None, 'dirpath': '/x'}},
            'hparams': {'lr': 1e-4, 'betas': (0.9, 0.999), 'flags': [True, False, None], 'big': 2**70}}
    torch.save(ckpt, os.path.join(OUT, 'lightning.ckpt'))
    half_expected = {f'model.{k}': (v.half().float() if v.is_floating_point() and v.dtype != torch.float16 and v.dtype != torch.bfloat16 else v) for k, v in expected.items()}
    half_expected['model.bf16'] = sd['bf16'].half().float()  # bf16 was .half()-converted in the checkpoint
    save_fixture('weights/plain', expected)
    save_fixture('weights/lightning', half_expected)

    marker = '/tmp/controlnet-oracle-pwned-marker'

    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    class EvalEvil:
        def __reduce__(self):
            import builtins
            return (builtins.eval, (f"open('{marker}', 'w')",))

    torch.save({'weight': torch.zeros(2), 'payload': Evil()}, os.path.join(OUT, 'evil-system.pth'))
    torch.save({'payload': EvalEvil(), 'weight': torch.zeros(2)}, os.path.join(OUT, 'evil-eval.pth'))
    with open(os.path.join(OUT, 'evil.json'), 'w') as f:
        json.dump({'marker': marker}, f)

# ---------------------------------------------------------------- checkpoints
UNET = dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=2,
            down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'), up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D'),
            cross_attention_dim=8, attention_head_dim=2, norm_num_groups=4)
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16), layers_per_block=2,
           down_block_types=('DownEncoderBlock2D',) * 2, up_block_types=('UpDecoderBlock2D',) * 2, norm_num_groups=4, sample_size=16)
CLIP = dict(vocab_size=1000, hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=77, projection_dim=8, bos_token_id=49406, eos_token_id=49407, pad_token_id=1)
CONTROL_EMBED = (4, 4, 8, 8)  # 4 entries → 6 cond-embedding blocks → conv_out at input_hint_block.14, like the real ones

RESNET = [('norm1', 'in_layers.0'), ('conv1', 'in_layers.2'), ('norm2', 'out_layers.0'), ('conv2', 'out_layers.3'),
          ('time_emb_proj', 'emb_layers.1'), ('conv_shortcut', 'skip_connection')]
VAE_RESNET = [('conv_shortcut', 'nin_shortcut')]
VAE_ATTN = [('group_norm', 'norm'), ('to_q', 'q'), ('to_k', 'k'), ('to_v', 'v'), ('to_out.0', 'proj_out')]


def sub(rest, pairs):
    for d, l in pairs:
        if rest.startswith(d + '.'):
            return l + rest[len(d):]
    return rest


def ldm_unet_name(k, L, cn=False):
    """diffusers UNet / ControlNet name → LDM name (without the model prefix)."""
    fixed = {'time_embedding.linear_1': 'time_embed.0', 'time_embedding.linear_2': 'time_embed.2', 'conv_in': 'input_blocks.0.0',
             'conv_norm_out': 'out.0', 'conv_out': 'out.2', 'controlnet_mid_block': 'middle_block_out.0',
             'controlnet_cond_embedding.conv_in': 'input_hint_block.0', 'controlnet_cond_embedding.conv_out': 'input_hint_block.14'}
    mod, leaf = k.rsplit('.', 1)
    if mod in fixed:
        return f'{fixed[mod]}.{leaf}'
    if m := re.fullmatch(r'controlnet_cond_embedding\.blocks\.(\d+)', mod):
        return f'input_hint_block.{2 * (int(m[1]) + 1)}.{leaf}'
    if m := re.fullmatch(r'controlnet_down_blocks\.(\d+)', mod):
        return f'zero_convs.{m[1]}.0.{leaf}'
    if m := re.match(r'down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)', k):
        i = 1 + int(m[1]) * (L + 1) + int(m[3])
        return f'input_blocks.{i}.0.{sub(m[4], RESNET)}' if m[2] == 'resnets' else f'input_blocks.{i}.1.{m[4]}'
    if m := re.match(r'down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)', k):
        return f'input_blocks.{1 + int(m[1]) * (L + 1) + L}.0.op.{m[2]}'
    if m := re.match(r'mid_block\.(resnets|attentions)\.(\d+)\.(.*)', k):
        if m[1] == 'resnets':
            return f'middle_block.{2 * int(m[2])}.{sub(m[3], RESNET)}'
        return f'middle_block.1.{m[3]}'
    if m := re.match(r'up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)', k):
        i = int(m[1]) * (L + 1) + int(m[3])
        return f'output_blocks.{i}.0.{sub(m[4], RESNET)}' if m[2] == 'resnets' else f'output_blocks.{i}.1.{m[4]}'
    raise KeyError(k)


def ldm_unet_upsampler(k, L, has_attn):
    m = re.match(r'up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)', k)
    return f'output_blocks.{int(m[1]) * (L + 1) + L}.{2 if has_attn[int(m[1])] else 1}.conv.{m[2]}'


def ldm_vae_name(k, n_up):
    if m := re.match(r'(encoder|decoder)\.conv_norm_out\.(.*)', k):
        return f'{m[1]}.norm_out.{m[2]}'
    if m := re.match(r'encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)', k):
        return f'encoder.down.{m[1]}.block.{m[2]}.{sub(m[3], VAE_RESNET)}'
    if m := re.match(r'encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)', k):
        return f'encoder.down.{m[1]}.downsample.conv.{m[2]}'
    if m := re.match(r'decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)', k):
        return f'decoder.up.{n_up - 1 - int(m[1])}.block.{m[2]}.{sub(m[3], VAE_RESNET)}'
    if m := re.match(r'decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)', k):
        return f'decoder.up.{n_up - 1 - int(m[1])}.upsample.conv.{m[2]}'
    if m := re.match(r'(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)', k):
        return f'{m[1]}.mid.block_{int(m[2]) + 1}.{sub(m[3], VAE_RESNET)}'
    if m := re.match(r'(encoder|decoder)\.mid_block\.attentions\.0\.(.*)', k):
        return f'{m[1]}.mid.attn_1.{sub(m[2], VAE_ATTN)}'
    return k  # conv_in, conv_out, quant_conv, post_quant_conv keep their names


def digest(sd):
    return {k: {'shape': list(v.shape), 'sha256': hashlib.sha256(v.detach().to(torch.float32).contiguous().numpy().tobytes()).hexdigest()}
            for k, v in sd.items()}


def assert_same(a, b, what):
    assert set(a) == set(b), f'{what}: keys differ: {sorted(set(a) ^ set(b))[:10]}'
    for k in a:
        assert a[k].shape == b[k].shape and torch.equal(a[k].float(), b[k].float()), f'{what}: {k} differs'


def plain(config):
    # Private entries (_use_default_values, ...) are unordered sets: leave them out to keep fixtures stable.
    return {k: v for k, v in dict(config).items() if not k.startswith('_')}


def hub_names(te_sd):
    return {'text_model.' + k: v for k, v in te_sd.items()}


def randomize(model):
    # Default inits leave zero convs and norms constant: fill everything so a mix-up of names shows.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return model


def checkpoints():
    from diffusers import AutoencoderKL, ControlNetModel, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    unet = randomize(UNet2DConditionModel(**UNET)).eval()
    vae = randomize(AutoencoderKL(**VAE)).eval()
    te = randomize(CLIPTextModel(CLIPTextConfig(**CLIP))).eval()
    L = UNET['layers_per_block']
    has_attn = ['CrossAttn' in t for t in UNET['up_block_types']]

    def unet_ldm(k):
        return ldm_unet_upsampler(k, L, has_attn) if '.upsamplers.' in k else ldm_unet_name(k, L)

    # fp16 in the file, like most published single-file checkpoints.
    single = {}
    for k, v in unet.state_dict().items():
        single['model.diffusion_model.' + unet_ldm(k)] = v.half()
    for k, v in vae.state_dict().items():
        name = ldm_vae_name(k, len(VAE['up_block_types']))
        v = v.half()
        if '.mid.attn_1.' in name and name.endswith('.weight') and v.ndim == 2:
            v = v[:, :, None, None]  # LDM stores the VAE attention projections as 1x1 convs
        single['first_stage_model.' + name] = v
    te_sd = te.state_dict()
    # transformers 5 names the text encoder's weights without the "text_model." its checkpoints (and our
    # WeightSource names) carry.
    for k, v in te_sd.items():
        single['cond_stage_model.transformer.text_model.' + k] = v.half() if v.is_floating_point() else v
    # Entries real checkpoints carry besides the three networks.
    single['cond_stage_model.transformer.text_model.embeddings.position_ids'] = torch.arange(77)[None]
    single['alphas_cumprod'] = torch.linspace(0.99, 0.01, 1000)
    single['betas'] = torch.linspace(0.00085, 0.012, 1000)
    single['model_ema.decay'] = torch.tensor(0.9999)
    single['model_ema.num_updates'] = torch.tensor(100, dtype=torch.int32)
    sd_path = os.path.join(OUT, 'sd15-tiny.safetensors')
    save_file({k: v.contiguous() for k, v in single.items()}, sd_path)

    # The converted models diffusers expects: the fp16-rounded originals.
    ref_unet = {k: v.half().float() for k, v in unet.state_dict().items()}
    ref_vae = {k: v.half().float() for k, v in vae.state_dict().items()}
    ref_te = {k: (v.half().float() if v.is_floating_point() else v) for k, v in te_sd.items()}

    tmp = tempfile.mkdtemp()
    try:
        tok = CLIPTokenizer.from_pretrained(os.path.join(ROOT, 'assets', 'tokenizer', 'clip-vit-large-patch14'), model_max_length=77)
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet,
                                       scheduler=PNDMScheduler(skip_prk_steps=True), safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
        pipe.save_pretrained(os.path.join(tmp, 'cfg'))
        loaded = StableDiffusionPipeline.from_single_file(sd_path, config=os.path.join(tmp, 'cfg'), local_files_only=True,
                                                          safety_checker=None, requires_safety_checker=False)
        assert_same(loaded.unet.state_dict(), ref_unet, 'unet')
        assert_same(loaded.vae.state_dict(), ref_vae, 'vae')
        got_te = loaded.text_encoder.state_dict()
        assert_same({k: got_te[k] for k in ref_te}, ref_te, 'text_encoder')

        # The diffusers folder of the same (fp32) model, minus the tokenizer vocabulary files (MBs).
        folder = os.path.join(OUT, 'sd15-tiny-diffusers')
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(os.path.join(tmp, 'cfg'), folder, ignore=shutil.ignore_patterns('vocab.json', 'merges.txt', 'tokenizer.json'))

        expected = {'configs': {'unet': plain(unet.config), 'vae': plain(vae.config), 'text_encoder': plain(te.config.to_dict())},
                    'unet': digest(ref_unet), 'vae': digest(ref_vae), 'text_encoder': digest(hub_names(ref_te)),
                    'diffusers_folder': {'unet': digest(unet.state_dict()), 'vae': digest(vae.state_dict()), 'text_encoder': digest(hub_names(te_sd))}}
        with open(os.path.join(OUT, 'sd15-tiny.expected.json'), 'w') as f:
            json.dump(expected, f, indent=0, sort_keys=True, default=sorted)

        # ControlNet 1.1 single-file layout: control_model.* keys, fp32.
        cn = randomize(ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=CONTROL_EMBED)).eval()
        cn_sd = cn.state_dict()
        cn_single = {'control_model.' + ldm_unet_name(k, L, cn=True): v for k, v in cn_sd.items()}
        cn_path = os.path.join(OUT, 'control-tiny.safetensors')
        save_file({k: v.contiguous() for k, v in cn_single.items()}, cn_path)
        # lllyasviel's ControlNet 1.1 files are torch.save .pth files with the same keys.
        torch.save(cn_single, os.path.join(OUT, 'control-tiny.pth'))
        cn.save_pretrained(os.path.join(tmp, 'cn'))
        cn_loaded = ControlNetModel.from_single_file(cn_path, config=os.path.join(tmp, 'cn'), local_files_only=True)
        assert_same(cn_loaded.state_dict(), cn_sd, 'controlnet')
        with open(os.path.join(OUT, 'control-tiny.expected.json'), 'w') as f:
            json.dump({'configs': {'controlnet': plain(cn.config)}, 'controlnet': digest(cn_sd)}, f, indent=0, sort_keys=True, default=sorted)
    finally:
        shutil.rmtree(tmp)
    print('single file', os.path.getsize(sd_path), 'bytes;', len(single), 'tensors; controlnet', os.path.getsize(cn_path), 'bytes')


def sd15_key_names():
    """The diffusers names of full-size SD 1.5 models (built on the meta device: no memory, no weights)."""
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    unet_cfg = dict(block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8, layers_per_block=2,
                    down_block_types=('CrossAttnDownBlock2D',) * 3 + ('DownBlock2D',), up_block_types=('UpBlock2D',) + ('CrossAttnUpBlock2D',) * 3)
    with torch.device('meta'):
        names = {
            'unet': list(UNet2DConditionModel(**unet_cfg).state_dict()),
            'controlnet': list(ControlNetModel(**{k: v for k, v in unet_cfg.items() if k != 'up_block_types'}).state_dict()),
            'vae': list(AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=('DownEncoderBlock2D',) * 4,
                                      up_block_types=('UpDecoderBlock2D',) * 4, latent_channels=4, layers_per_block=2).state_dict()),
            'text_encoder': ['text_model.' + k for k in CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                                                                     num_attention_heads=12, vocab_size=49408)).state_dict()],
        }
    with open(os.path.join(OUT, 'sd15-keys.json'), 'w') as f:
        json.dump(names, f)
    print('sd15 key counts', {k: len(v) for k, v in names.items()})


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    sd15_key_names()
    dtypes()
    pickles()
    checkpoints()
