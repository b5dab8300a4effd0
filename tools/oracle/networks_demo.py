"""The demo model's architecture, taken from diffusers / transformers: for each network its config.json (as
save_pretrained writes it) and every weight name with its shape. src/engine/models/demo.ts fills these with
seeded random values: the random tiny models the tests and benchmarks serve (the quick start installs the
trained demo model of assets/demo-model instead, made by tools/demo_model/).

Writes src/engine/models/demo-manifest.json. Latent factor 8 and 77-token CLIP with the real 49408 vocabulary
(the demo uses the real tokenizer), 12 layers (every clip_skip of the API), everything else tiny.
"""
import json, os, tempfile
import torch
from common import ROOT
from diffusers import UNet2DConditionModel, ControlNetModel, AutoencoderKL
from transformers import CLIPTextConfig, CLIPTextModel

UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
    down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'), up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D'),
    cross_attention_dim=16, attention_head_dim=2, norm_num_groups=8,
)
CONTROLNET = dict(
    in_channels=4, layers_per_block=1, block_out_channels=(16, 32),
    down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'), cross_attention_dim=16, attention_head_dim=2,
    norm_num_groups=8, conditioning_embedding_out_channels=(8, 8, 16, 16),
)
VAE = dict(
    in_channels=3, out_channels=3, block_out_channels=(8, 8, 16, 16), latent_channels=4, layers_per_block=1,
    down_block_types=('DownEncoderBlock2D',) * 4, up_block_types=('UpDecoderBlock2D',) * 4,
    norm_num_groups=4, sample_size=512, scaling_factor=0.18215,
)
CLIP = dict(
    vocab_size=49408, hidden_size=16, intermediate_size=32, num_hidden_layers=12, num_attention_heads=4,
    max_position_embeddings=77, hidden_act='quick_gelu', projection_dim=16, bos_token_id=49406,
    eos_token_id=49407, pad_token_id=1,
)


def describe(model, with_prefix=''):
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        config = json.load(open(os.path.join(d, 'config.json')))
    weights = {with_prefix + k: list(v.shape) for k, v in model.state_dict().items()}
    return {'config': config, 'weights': weights}


def main():
    torch.manual_seed(0)
    manifest = {
        'unet': describe(UNet2DConditionModel(**UNET)),
        'controlnet': describe(ControlNetModel(**CONTROLNET)),
        'vae': describe(AutoencoderKL(**VAE)),
        # SD checkpoints (and transformers < 5) name CLIP weights with the text_model. prefix
        'text_encoder': describe(CLIPTextModel(CLIPTextConfig(**CLIP)), 'text_model.'),
    }
    manifest['text_encoder']['config'].pop('transformers_version', None)
    with open(os.path.join(ROOT, 'src', 'engine', 'models', 'demo-manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)


if __name__ == '__main__':
    main()
