"""Single-op references for the ONNX graph builder: each op computed by torch on seeded random inputs.

Writes tests/fixtures/onnx/ops.{json,bin}. The TypeScript test builds one graph per op with our builder, runs it
in ONNX Runtime on the same inputs and compares (max abs error <= 1e-5).
"""
import numpy as np
import torch
import torch.nn.functional as F
from common import save_fixture

torch.manual_seed(0)
rng = np.random.default_rng(0)
t = {}


def r(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# Conv 3x3, padding 1, stride 1 and stride 2 (a downsampler), with bias
t['conv.x'] = r(2, 8, 9, 7)
t['conv.w'] = r(6, 8, 3, 3) * 0.2
t['conv.b'] = r(6)
t['conv.y1'] = F.conv2d(torch.from_numpy(t['conv.x']), torch.from_numpy(t['conv.w']), torch.from_numpy(t['conv.b']), padding=1)
t['conv.y2'] = F.conv2d(torch.from_numpy(t['conv.x']), torch.from_numpy(t['conv.w']), torch.from_numpy(t['conv.b']), padding=1, stride=2)

# GroupNorm: 8 channels in 4 groups, eps 1e-6, affine
t['gn.x'] = r(2, 8, 5, 6) * 3 + 1
t['gn.scale'] = r(8)
t['gn.bias'] = r(8)
t['gn.y'] = F.group_norm(torch.from_numpy(t['gn.x']), 4, torch.from_numpy(t['gn.scale']), torch.from_numpy(t['gn.bias']), eps=1e-6)

# LayerNorm over the last axis, eps 1e-5
t['ln.x'] = r(2, 5, 16) * 2
t['ln.scale'] = r(16)
t['ln.bias'] = r(16)
t['ln.y'] = F.layer_norm(torch.from_numpy(t['ln.x']), (16,), torch.from_numpy(t['ln.scale']), torch.from_numpy(t['ln.bias']), eps=1e-5)

# Linear (MatMul with transposed weight + Add)
t['lin.x'] = r(2, 5, 16)
t['lin.w'] = r(12, 16) * 0.3
t['lin.b'] = r(12)
t['lin.y'] = F.linear(torch.from_numpy(t['lin.x']), torch.from_numpy(t['lin.w']), torch.from_numpy(t['lin.b']))

# Attention: q [B,Sq,H*d], k/v [B,Sk,H*d], 4 heads, softmax(q k^T / sqrt(d)) v
B, Sq, Sk, H, d = 2, 10, 7, 4, 8
t['mha.q'] = r(B, Sq, H * d)
t['mha.k'] = r(B, Sk, H * d)
t['mha.v'] = r(B, Sk, H * d)
q = torch.from_numpy(t['mha.q']).view(B, Sq, H, d).transpose(1, 2)
k = torch.from_numpy(t['mha.k']).view(B, Sk, H, d).transpose(1, 2)
v = torch.from_numpy(t['mha.v']).view(B, Sk, H, d).transpose(1, 2)
t['mha.y'] = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, Sq, H * d)

# GELU (erf form, as diffusers' GEGLU uses), SiLU, Softmax
t['act.x'] = r(3, 33) * 3
t['act.gelu'] = F.gelu(torch.from_numpy(t['act.x']))
t['act.gelu_tanh'] = F.gelu(torch.from_numpy(t['act.x']), approximate='tanh')
t['act.silu'] = F.silu(torch.from_numpy(t['act.x']))
t['act.softmax'] = F.softmax(torch.from_numpy(t['act.x']), dim=-1)

# Nearest 2x upsampling (diffusers Upsample2D uses F.interpolate(scale_factor=2, mode="nearest"))
t['up.x'] = r(1, 3, 4, 5)
t['up.y'] = F.interpolate(torch.from_numpy(t['up.x']), scale_factor=2.0, mode='nearest')

# Embedding lookup (Gather) with int64 ids
t['emb.table'] = r(50, 6)
t['emb.ids'] = np.array([[0, 49, 3, 3], [7, 1, 2, 48]], dtype=np.int64)
t['emb.y'] = F.embedding(torch.from_numpy(t['emb.ids']), torch.from_numpy(t['emb.table']))

# Sinusoidal timestep embedding as diffusers get_timestep_embedding(flip_sin_to_cos=True, shift=0), dim 32
ts = torch.tensor([1.0, 999.0, 500.5], dtype=torch.float32)
half = 16
exponent = -np.log(10000) * torch.arange(0, half, dtype=torch.float32) / half
emb = ts[:, None].float() * torch.exp(exponent)[None, :]
emb = torch.cat([torch.cos(emb), torch.sin(emb)], dim=-1)
t['temb.t'] = ts
t['temb.y'] = emb

save_fixture('onnx/ops', t, {'torch': torch.__version__})
print('wrote', len(t), 'tensors')
