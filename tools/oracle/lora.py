"""LoRA oracle: tiny random LoRAs in every key format we parse, and the weight deltas diffusers / peft apply.

For a tiny SD-1.x-shaped UNet and CLIP text encoder (random weights), this writes LoRA files under
tests/fixtures/lora/ in the kohya (diffusers-named and LDM-named, LoCon convs included), old diffusers
(attn-procs / lora_linear_layer), diffusers-PEFT (lora_A / lora_B) and raw PEFT formats, then loads them
with diffusers' load_lora_weights + set_adapters(weights) + fuse_lora (peft's merge for raw PEFT) and saves
the effective delta ΔW = fused - original of every changed weight, keyed by diffusers weight name.
"""
import json, os
import numpy as np
import torch
from safetensors.torch import save_file
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from common import FIXTURES, save_fixture

torch.set_num_threads(1)
OUT = os.path.join(FIXTURES, 'lora')
os.makedirs(OUT, exist_ok=True)

UNET_CONFIG = dict(
    sample_size=16, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(8, 16, 16, 16),
    down_block_types=('CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'),
    up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'),
    cross_attention_dim=12, attention_head_dim=4, norm_num_groups=4,
)
CLIP_CONFIG = dict(hidden_size=12, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2,
                   vocab_size=100, max_position_embeddings=16, projection_dim=12, bos_token_id=0, eos_token_id=2)


def make_pipe():
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    te = CLIPTextModel(CLIPTextConfig(**CLIP_CONFIG))
    vae = AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=4,
                        down_block_types=('DownEncoderBlock2D',), up_block_types=('UpDecoderBlock2D',))
    return StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=None, unet=unet, scheduler=DDIMScheduler(steps_offset=1, clip_sample=False),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


PIPE = make_pipe()
MODULES = dict(PIPE.unet.named_modules())
# transformers 5 names CLIPTextModel's modules without the `text_model.` of the checkpoints (and of our graphs).
TE_PREFIX = '' if any(n.startswith('text_model.') for n, _ in PIPE.text_encoder.named_modules()) else 'text_model.'
TE_MODULES = {TE_PREFIX + n: m for n, m in PIPE.text_encoder.named_modules()}

# Targets: (diffusers module path, rank); chosen to cover every layer kind a LoRA touches. Alphas come per file
# the way kohya writes them: one network alpha for linear layers and one conv alpha for LoCon convs. (diffusers
# applies per-module alphas only partly: for attention and text-encoder layers it uses the file's most common
# alpha, so files whose alphas differ per linear layer are not compared against it; see tests/engine/lora.)
UNET_TARGETS = [
    ('down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q', 4),
    ('down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k', 4),
    ('down_blocks.1.attentions.1.transformer_blocks.0.attn1.to_out.0', 3),
    ('mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj', 4),
    ('up_blocks.1.attentions.2.transformer_blocks.0.ff.net.2', 2),
    ('up_blocks.2.attentions.0.proj_in', 4),
    ('down_blocks.0.attentions.1.proj_out', 2),
    ('up_blocks.0.resnets.1.time_emb_proj', 4),
]
# LoCon conv layers (kxk lora_down, 1x1 lora_up).
UNET_CONV_TARGETS = [
    ('down_blocks.0.resnets.0.conv1', 2),
    ('down_blocks.1.resnets.0.conv_shortcut', 2),
    ('mid_block.resnets.1.conv2', 3),
    ('down_blocks.0.downsamplers.0.conv', 2),
    ('up_blocks.1.upsamplers.0.conv', 2),
]
TE_TARGETS = [
    ('text_model.encoder.layers.0.self_attn.q_proj', 4),
    ('text_model.encoder.layers.0.self_attn.k_proj', 4),
    ('text_model.encoder.layers.1.self_attn.v_proj', 2),
    ('text_model.encoder.layers.1.self_attn.out_proj', 2),
    ('text_model.encoder.layers.1.mlp.fc1', 4),
    ('text_model.encoder.layers.0.mlp.fc2', 3),
]

# The same UNet layers in the original (LDM / sgm) naming, for layers_per_block = 2.
LDM_NAMES = {
    'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q': 'input_blocks_1_1_transformer_blocks_0_attn1_to_q',
    'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k': 'input_blocks_1_1_transformer_blocks_0_attn2_to_k',
    'down_blocks.1.attentions.1.transformer_blocks.0.attn1.to_out.0': 'input_blocks_5_1_transformer_blocks_0_attn1_to_out_0',
    'mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj': 'middle_block_1_transformer_blocks_0_ff_net_0_proj',
    'up_blocks.1.attentions.2.transformer_blocks.0.ff.net.2': 'output_blocks_5_1_transformer_blocks_0_ff_net_2',
    'up_blocks.2.attentions.0.proj_in': 'output_blocks_6_1_proj_in',
    'down_blocks.0.attentions.1.proj_out': 'input_blocks_2_1_proj_out',
    'up_blocks.0.resnets.1.time_emb_proj': 'output_blocks_1_0_emb_layers_1',
    'down_blocks.0.resnets.0.conv1': 'input_blocks_1_0_in_layers_2',
    'down_blocks.1.resnets.0.conv_shortcut': 'input_blocks_4_0_skip_connection',
    'mid_block.resnets.1.conv2': 'middle_block_2_out_layers_3',
    'down_blocks.0.downsamplers.0.conv': 'input_blocks_3_0_op',
    'up_blocks.1.upsamplers.0.conv': 'output_blocks_5_2_conv',
}

rng = np.random.default_rng(1234)


def pair(module, rank, conv_kernel=True):
    """Random (down, up) for a module: Linear → [r,in], [out,r]; Conv → [r,in,k,k], [out,r,1,1]."""
    w = module.weight
    if w.ndim == 4:
        out_c, in_c, k, _ = w.shape
        k = k if conv_kernel else 1
        down = rng.standard_normal((rank, in_c, k, k)).astype(np.float32) * 0.3
        up = rng.standard_normal((out_c, rank, 1, 1)).astype(np.float32) * 0.3
    else:
        out_f, in_f = w.shape
        down = rng.standard_normal((rank, in_f)).astype(np.float32) * 0.3
        up = rng.standard_normal((out_f, rank)).astype(np.float32) * 0.3
    return torch.from_numpy(down), torch.from_numpy(up)


def random_branches(with_conv, alpha=None, conv_alpha=None):
    """{('unet'|'te', path): (down, up, alpha)} with fresh random weights."""
    out = {}
    for path, r in UNET_TARGETS:
        out[('unet', path)] = (*pair(MODULES[path], r), alpha)
    for path, r in UNET_CONV_TARGETS if with_conv else []:
        out[('unet', path)] = (*pair(MODULES[path], r), conv_alpha)
    for path, r in TE_TARGETS:
        out[('te', path)] = (*pair(TE_MODULES[path], r), alpha)
    return out


def kohya(branches, ldm=False):
    sd = {}
    for (comp, path), (down, up, alpha) in branches.items():
        if comp == 'unet':
            stem = 'lora_unet_' + (LDM_NAMES[path] if ldm else path.replace('.', '_'))
        else:
            stem = 'lora_te_' + path.replace('.', '_')
        sd[f'{stem}.lora_down.weight'] = down
        sd[f'{stem}.lora_up.weight'] = up
        if alpha is not None:
            sd[f'{stem}.alpha'] = torch.tensor(alpha)
    return sd


def diffusers_old(branches):
    """The pre-PEFT diffusers layout: attention processors (to_q_lora ...) and .lora / lora_linear_layer."""
    sd = {}
    for (comp, path), (down, up, alpha) in branches.items():
        assert alpha is None
        if comp == 'unet':
            parent, leaf = path.rsplit('.', 1)
            if '.attn' in path and leaf in ('to_q', 'to_k', 'to_v'):
                stem = f'unet.{parent}.processor.{leaf}_lora'
            elif path.endswith('.to_out.0'):
                stem = f'unet.{path[:-len(".to_out.0")]}.processor.to_out_lora'
            else:
                stem = f'unet.{path}.lora'
        else:
            parent, leaf = path.rsplit('.', 1)
            old = {'q_proj': 'to_q_lora', 'k_proj': 'to_k_lora', 'v_proj': 'to_v_lora', 'out_proj': 'to_out_lora'}
            stem = f'text_encoder.{parent}.{old[leaf]}' if leaf in old else f'text_encoder.{path}.lora_linear_layer'
        sd[f'{stem}.down.weight'] = down
        sd[f'{stem}.up.weight'] = up
    return sd


def diffusers_peft(branches):
    sd = {}
    for (comp, path), (down, up, alpha) in branches.items():
        assert alpha is None
        prefix = 'unet' if comp == 'unet' else 'text_encoder'
        sd[f'{prefix}.{path}.lora_A.weight'] = down
        sd[f'{prefix}.{path}.lora_B.weight'] = up
    return sd


def snapshot():
    w = {n: p.detach().clone() for n, p in PIPE.unet.named_parameters() if n.endswith('.weight')}
    w.update({TE_PREFIX + n: p.detach().clone() for n, p in PIPE.text_encoder.named_parameters() if n.endswith('.weight')})
    return w


def fused_deltas(files, weights):
    """ΔW per changed weight after load_lora_weights + set_adapters(weights) + fuse_lora, then unloads."""
    before = snapshot()
    names = []
    for i, f in enumerate(files):
        name = f'adapter{i}'
        PIPE.load_lora_weights(os.path.join(OUT, f), adapter_name=name)
        names.append(name)
    PIPE.set_adapters(names, adapter_weights=weights)
    PIPE.fuse_lora(components=['unet', 'text_encoder'], adapter_names=names)
    after = {}
    for n, p in PIPE.unet.named_parameters():
        after[n.replace('.base_layer.', '.')] = p.detach().clone()
    for n, p in PIPE.text_encoder.named_parameters():
        after[TE_PREFIX + n.replace('.base_layer.', '.')] = p.detach().clone()
    PIPE.unfuse_lora(components=['unet', 'text_encoder'])
    PIPE.unload_lora_weights()
    deltas = {n: after[n] - w for n, w in before.items() if not torch.equal(after[n], w)}
    now = snapshot()
    assert now.keys() == before.keys(), sorted(set(now) ^ set(before))[:5]
    bad = [n for n, w in before.items() if not torch.allclose(now[n], w, atol=1e-6, rtol=0)]
    assert not bad, bad[:5]
    return deltas


def expected_delta(branches, strength):
    """Our own reading of the semantics (strength × alpha / rank × up @ down), to sanity-check the oracle."""
    out = {}
    for (comp, path), (down, up, alpha) in branches.items():
        r = down.shape[0]
        scale = strength * (alpha / r if alpha is not None else 1.0)
        d = (up.reshape(up.shape[0], r) @ down.reshape(r, -1)) * scale
        out[path + '.weight'] = d
    return out


def check_and_save(name, deltas, expected_parts, meta):
    exp = {}
    for part in expected_parts:
        for k, v in part.items():
            exp[k] = exp.get(k, 0) + v
    assert set(deltas) == set(exp), (name, sorted(set(deltas) ^ set(exp)))
    for k, v in exp.items():
        e = float((deltas[k].reshape(v.shape) - v).abs().max())
        if e >= 1e-5:
            print('  mismatch', name, k, e, float(v.abs().max()), float(deltas[k].abs().max()))
    worst = max(float((deltas[k].reshape(v.shape) - v).abs().max()) for k, v in exp.items()) if exp else 0.0
    assert worst < 1e-5, (name, worst)
    save_fixture(f'lora/{name}', deltas, {**meta, 'selfcheck_max_abs': worst})
    print(f'{name}: {len(deltas)} layers, diffusers vs strength*alpha/r*up@down max abs {worst:.2e}')


# ---- the LoRA files
kohya_a = random_branches(with_conv=True, alpha=2.0, conv_alpha=1.0)
save_file(kohya(kohya_a), os.path.join(OUT, 'kohya.safetensors'))
torch.save(kohya(kohya_a), os.path.join(OUT, 'kohya.pt'))  # the same LoRA as a pickled state dict
kohya_ldm = random_branches(with_conv=True, alpha=4.0, conv_alpha=3.0)
save_file(kohya(kohya_ldm, ldm=True), os.path.join(OUT, 'kohya_ldm.safetensors'))
old = random_branches(with_conv=False)
save_file(diffusers_old(old), os.path.join(OUT, 'diffusers_old.safetensors'))
dpeft = random_branches(with_conv=True)
save_file(diffusers_peft(dpeft), os.path.join(OUT, 'diffusers_peft.safetensors'))


def unet_config_obj():
    return PIPE.unet.config


# diffusers maps LDM-named kohya keys only when told the UNet config.
_orig_lsd = StableDiffusionPipeline.lora_state_dict.__func__


def _lsd_with_config(cls, path, **kw):
    kw.setdefault('unet_config', PIPE.unet.config)
    return _orig_lsd(cls, path, **kw)


StableDiffusionPipeline.lora_state_dict = classmethod(_lsd_with_config)

check_and_save('kohya_delta', fused_deltas(['kohya.safetensors'], [1.0]), [expected_delta(kohya_a, 1.0)],
               {'files': ['kohya.safetensors'], 'strengths': [1.0]})
check_and_save('kohya_ldm_delta', fused_deltas(['kohya_ldm.safetensors'], [0.8]), [expected_delta(kohya_ldm, 0.8)],
               {'files': ['kohya_ldm.safetensors'], 'strengths': [0.8]})
check_and_save('diffusers_old_delta', fused_deltas(['diffusers_old.safetensors'], [1.0]), [expected_delta(old, 1.0)],
               {'files': ['diffusers_old.safetensors'], 'strengths': [1.0]})
check_and_save('diffusers_peft_delta', fused_deltas(['diffusers_peft.safetensors'], [1.0]),
               [expected_delta(dpeft, 1.0)], {'files': ['diffusers_peft.safetensors'], 'strengths': [1.0]})
# Several LoRAs at once, with strengths (the request's lora_model / lora_strength).
check_and_save('combo_delta', fused_deltas(['kohya.safetensors', 'diffusers_peft.safetensors'], [0.7, 0.4]),
               [expected_delta(kohya_a, 0.7), expected_delta(dpeft, 0.4)],
               {'files': ['kohya.safetensors', 'diffusers_peft.safetensors'], 'strengths': [0.7, 0.4]})
check_and_save('combo3_delta',
               fused_deltas(['kohya_ldm.safetensors', 'diffusers_old.safetensors', 'kohya.safetensors'], [0.5, 0.9, 0.3]),
               [expected_delta(kohya_ldm, 0.5), expected_delta(old, 0.9), expected_delta(kohya_a, 0.3)],
               {'files': ['kohya_ldm.safetensors', 'diffusers_old.safetensors', 'kohya.safetensors'],
                'strengths': [0.5, 0.9, 0.3]})

# ---- raw PEFT (base_model.model.* + adapter_config.json), merged by peft itself; rank/alpha patterns included.
torch.manual_seed(7)
unet = UNet2DConditionModel(**UNET_CONFIG)
before = {n: p.detach().clone() for n, p in unet.named_parameters()}
cfg = LoraConfig(r=4, lora_alpha=6, init_lora_weights=False,
                 target_modules=['to_q', 'to_v', 'to_out.0', 'proj_in', 'conv1'],
                 rank_pattern={'down_blocks.0.resnets.0.conv1': 2}, alpha_pattern={'mid_block.attentions.0.proj_in': 12})
model = get_peft_model(unet, cfg)
sd = get_peft_model_state_dict(model)
sd = {k: v.contiguous() for k, v in sd.items()}
peft_dir = os.path.join(OUT, 'peft')
os.makedirs(peft_dir, exist_ok=True)
save_file(sd, os.path.join(peft_dir, 'adapter_model.safetensors'))
cfg_json = cfg.to_dict()
cfg_json = {k: (sorted(v) if isinstance(v, set) else v) for k, v in cfg_json.items()}
with open(os.path.join(peft_dir, 'adapter_config.json'), 'w') as f:
    json.dump({k: cfg_json[k] for k in ('r', 'lora_alpha', 'rank_pattern', 'alpha_pattern', 'target_modules',
                                         'use_rslora', 'peft_type', 'use_dora')}, f, indent=1)
merged = model.merge_and_unload()
peft_deltas = {n: p.detach() - before[n] for n, p in merged.named_parameters() if not torch.equal(p, before[n])}
save_fixture('lora/peft_delta', peft_deltas, {'files': ['peft'], 'strengths': [1.0]})
print(f'peft: {len(peft_deltas)} layers, keys like {next(iter(sd))}')
