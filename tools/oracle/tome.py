"""ToMe oracle: tomesd 0.1.3's bipartite_soft_matching_random2d merge / unmerge on random tokens.

For several grids (64x64, odd sizes, other strides and ratios, random and fixed dst choice, odd batch) this
saves the metric x [B, N, C], a tensor v [B, N, c] and merge(v), a tensor u [B, N - r, c] and unmerge(u).
The tokens are built so that the similarities tomesd sorts are well separated (no near-ties whose order
float rounding could flip); the gaps are checked here. Also saves torch.randint draws for the seeded dst choice.
"""
import math
import numpy as np
import torch
from tomesd.merge import bipartite_soft_matching_random2d
from common import save_fixture

torch.set_num_threads(1)

CASES = [
    # name, h, w, ratio, sx, sy, use_rand, seed, B, C, c
    ('g64_norand', 64, 64, 0.5, 2, 2, False, 0, 1, 16, 4),
    ('g64_rand', 64, 64, 0.5, 2, 2, True, 1234, 2, 16, 3),
    ('g9x7_rand', 9, 7, 0.5, 2, 2, True, 42, 2, 8, 5),
    ('g17x13_r03', 17, 13, 0.3, 2, 2, False, 0, 1, 8, 3),
    ('g8_r075_rand', 8, 8, 0.75, 2, 2, True, 5, 2, 8, 4),
    ('g12x10_s3x2_rand', 12, 10, 0.4, 3, 2, True, 7, 2, 8, 3),
    ('g5_odd_batch', 5, 5, 0.6, 2, 2, True, 3, 3, 8, 2),
]


def internals(fn):
    """The index tensors a tomesd merge closure captured (a_idx, b_idx, unm_idx, src_idx, dst_idx, r)."""
    out = {}
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__):
        val = cell.cell_contents
        out[name] = val
        if callable(val) and getattr(val, '__closure__', None):
            out.update(internals(val))  # merge -> split holds a_idx, b_idx
    return out


def make_tokens(rng, h, w, ratio, sx, sy, no_rand, seed, B, C):
    """Random dst tokens; each src token is a rotation of a chosen dst by a distinct angle, then rescaled."""
    N = h * w
    dummy = torch.randn(B, N, C, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(seed)
    m, _ = bipartite_soft_matching_random2d(dummy, w, h, sx, sy, int(N * ratio), no_rand=no_rand, generator=gen)
    ins = internals(m)
    a_idx, b_idx = ins['a_idx'][0, :, 0].numpy(), ins['b_idx'][0, :, 0].numpy()
    na, nd = len(a_idx), len(b_idx)
    x = np.zeros((B, N, C), np.float64)
    for bi in range(B):
        u = rng.standard_normal((nd, C))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        sims = 0.9 + 0.099 * rng.permutation(na) / max(na - 1, 1)  # distinct, spaced by ~0.1 / na
        target = rng.integers(0, nd, na)
        noise = rng.standard_normal((na, C))
        noise -= (noise * u[target]).sum(1, keepdims=True) * u[target]
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        src = sims[:, None] * u[target] + np.sqrt(1 - sims[:, None] ** 2) * noise
        x[bi, b_idx] = u * rng.uniform(0.5, 2.0, (nd, 1))
        x[bi, a_idx] = src * rng.uniform(0.5, 2.0, (na, 1))
    x = torch.from_numpy(x.astype(np.float32))
    # The gaps tomesd's argmax and argsort see, in float64 on the float32 tokens.
    xn = x.double() / x.double().norm(dim=-1, keepdim=True)
    scores = xn[:, a_idx] @ xn[:, b_idx].transpose(1, 2)
    top2 = scores.topk(min(2, nd), dim=-1).values
    argmax_gap = float((top2[..., 0] - top2[..., -1]).min()) if nd > 1 else 1.0
    node_max = scores.max(-1).values.sort(-1).values
    order_gap = float((node_max[:, 1:] - node_max[:, :-1]).min()) if na > 1 else 1.0
    assert argmax_gap > 1e-4 and order_gap > 1e-6, (argmax_gap, order_gap)
    return x, argmax_gap, order_gap


rng = np.random.default_rng(2024)
for name, h, w, ratio, sx, sy, use_rand, seed, B, C, c in CASES:
    N = h * w
    no_rand = not use_rand or B % 2 == 1  # compute_merge turns use_rand off for odd batches
    x, argmax_gap, order_gap = make_tokens(rng, h, w, ratio, sx, sy, no_rand, seed, B, C)
    r = int(N * ratio)
    merge, unmerge = bipartite_soft_matching_random2d(x, w, h, sx, sy, r, no_rand=no_rand,
                                                      generator=torch.Generator().manual_seed(seed))
    v = torch.randn(B, N, c, generator=torch.Generator().manual_seed(seed + 1))
    merged = merge(v)
    u = torch.randn(B, merged.shape[1], c, generator=torch.Generator().manual_seed(seed + 2))
    unmerged = unmerge(u)
    roundtrip = unmerge(merge(v))
    # The dst tokens in the order tomesd keeps them: torch's unstable CPU argsort of the -1/0 buffer does not
    # give token order, and the merged tensor lists dst in this order.
    b_idx = internals(merge)['b_idx'][0, :, 0]
    save_fixture(f'tome/{name}', {'x': x, 'v': v, 'merged': merged, 'u': u, 'unmerged': unmerged, 'roundtrip': roundtrip,
                                  'b_idx': b_idx},
                 {'h': h, 'w': w, 'ratio': ratio, 'sx': sx, 'sy': sy, 'use_rand': use_rand, 'seed': seed,
                  'r': min(r, N - (h // sy) * (w // sx)), 'argmax_gap': argmax_gap, 'order_gap': order_gap})
    print(f'{name}: N={N} merged {tuple(merged.shape)} gaps argmax {argmax_gap:.2e} order {order_gap:.2e}')

# The seeded dst choice: torch.randint(sx*sy, ...) from a fresh generator (mt19937 words modulo the range).
save_fixture('tome/randint', {
    'seed42_range4': torch.randint(4, (64,), generator=torch.Generator().manual_seed(42)),
    'seed7_range6': torch.randint(6, (64,), generator=torch.Generator().manual_seed(7)),
    'seed1234_range4_grid': torch.randint(4, (32, 32, 1), generator=torch.Generator().manual_seed(1234)),
})

# compute_merge's block rule for a few latent sizes: downsample = ceil(sqrt(original_tokens // tokens)).
rule = []
for oh, ow in [(64, 64), (9, 7), (96, 64), (17, 13)]:
    th, tw = oh, ow
    for level in range(4):
        rule.append([oh, ow, th * tw, int(math.ceil(math.sqrt((oh * ow) // (th * tw))))])
        th, tw = (th + 1) // 2, (tw + 1) // 2
save_fixture('tome/downsample_rule', {'rows': np.array(rule, np.int64)})
