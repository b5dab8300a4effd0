"""Reference noise for src/engine/random: torch.Generator("cpu").manual_seed(seed) + torch.randn / torch.rand.

Writes tests/fixtures/random/noise.{json,bin}. Shapes cover both randn paths (< 16 elements: scalar double
Box-Muller with a cached second value; >= 16: vectorised float path with a recomputed ragged tail), and a
sequence of mixed calls on one generator checks that state (and the cached normal) carries across calls.
"""
import torch
from common import save_fixture

torch.set_num_threads(1)

SEEDS = [0, 1, 7, 42, 99, 1234, 123456789, 2**31 - 1, 3141592653, 2**32 - 1, 2**32 + 5, 2**53 - 1]
SHAPES = [[1], [3], [15], [16], [17], [31], [33], [1, 4, 8, 8], [1, 4, 33, 31]]
BIG_SEEDS = [0, 42, 3141592653]
BIG_SHAPE = [2, 4, 64, 64]
SEQUENCE = [('randn', [1, 4, 8, 8]), ('randn', [3]), ('randn', [1]), ('rand', [5]), ('randn', [17]),
            ('randn', [1]), ('rand', [20]), ('randn', [2, 4, 8, 8]), ('randn', [2])]

tensors, cases = {}, []
for seed in SEEDS:
    for shape in SHAPES:
        for kind in ('randn', 'rand'):
            key = f'{kind}_{seed}_{"x".join(map(str, shape))}'
            g = torch.Generator('cpu').manual_seed(seed)
            fn = torch.randn if kind == 'randn' else torch.rand
            tensors[key] = fn(shape, generator=g, dtype=torch.float32)
            cases.append({'key': key, 'kind': kind, 'seed': seed, 'shape': shape})
for seed in BIG_SEEDS:
    key = f'randn_{seed}_{"x".join(map(str, BIG_SHAPE))}'
    g = torch.Generator('cpu').manual_seed(seed)
    tensors[key] = torch.randn(BIG_SHAPE, generator=g, dtype=torch.float32)
    cases.append({'key': key, 'kind': 'randn', 'seed': seed, 'shape': BIG_SHAPE})

sequences = []
for seed in [0, 5, 2024]:
    g = torch.Generator('cpu').manual_seed(seed)
    steps = []
    for i, (kind, shape) in enumerate(SEQUENCE):
        key = f'seq_{seed}_{i}'
        fn = torch.randn if kind == 'randn' else torch.rand
        tensors[key] = fn(shape, generator=g, dtype=torch.float32)
        steps.append({'key': key, 'kind': kind, 'shape': shape})
    sequences.append({'seed': seed, 'steps': steps})

save_fixture('random/noise', tensors, {
    'torch': torch.__version__, 'cpu_capability': torch.backends.cpu.get_cpu_capability(),
    'cases': cases, 'sequences': sequences,
})
print(f'random/noise: {len(tensors)} tensors')
