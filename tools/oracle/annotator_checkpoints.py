"""Oracle for the annotator networks our graph builder builds from the original checkpoints
(src/engine/models/annotators/*.ts): controlnet_aux 0.0.10's own module classes (annotator_export.aux), loaded
with deterministic pattern weights that the TypeScript test regenerates bit for bit (no 30-60 MB random
checkpoint committed), run on a pattern input. The fixture stores, per network, the state_dict's keys and shapes
(the checkpoint layout: our builder must consume exactly these) and the raw network outputs before any
post-processing.

Pattern weights, per tensor named `key` with n values and fan_in = n / shape[0] (1 for 0-d/1-d tensors: bias):
  seed = FNV-1a 32-bit of the key's UTF-8 bytes
  u_i  = mix(i * 2654435761 + seed) over uint32, mix(u) = (u ^ (u >> 15)) * 0x2c1b3c6d, then u ^ (u >> 12)
  w_i  = float32((u_i / 2^32 * 2 - 1) * bound), bound = sqrt(3 / fan_in) (variance-preserving), 0.1 for 0-d/1-d,
         1 for ViT token embeddings (keys ending in .pos_embed or .cls_token: [1, N, D], whose fan_in rule would make
         them ~1e-3 and a wrong position-embedding resize invisible)
  BatchNorm running_var and 1-d weights (norm scales): float32(1 + w_i); num_batches_tracked (int64) is left as is.
  (Scales near 1 keep deep networks such as NormalBae's EfficientNet-B5 from collapsing to a constant output, which
  would make the comparison blind to errors in early layers.)
Input: x[i] = ((i * 7919 + 13) % 2001) / 2000 * scale (exact in float32), NCHW.
Writes tests/fixtures/annotators/checkpoints.{json,bin}.
"""
import numpy as np
import torch
from annotator_export import aux
from common import save_fixture


def fnv1a(s):
    h = 0x811c9dc5
    for b in s.encode():
        h ^= b
        h = (h * 0x01000193) & 0xffffffff
    return h


def pattern(key, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    u = np.arange(n, dtype=np.uint32) * np.uint32(2654435761) + np.uint32(fnv1a(key))
    u = (u ^ (u >> np.uint32(15))) * np.uint32(0x2c1b3c6d)
    u = u ^ (u >> np.uint32(12))
    fan_in = n // shape[0] if len(shape) >= 2 else 1
    bound = np.sqrt(3.0 / fan_in) if len(shape) >= 2 else 0.1
    if key.endswith(('.pos_embed', '.cls_token')):
        bound = 1.0
    return ((u.astype(np.float64) / 4294967296 * 2 - 1) * bound).astype(np.float32).reshape(shape)


def pattern_for(k, v):
    if not v.is_floating_point():
        return v
    w = pattern(k, list(v.shape))
    if k.endswith('running_var') or (k.endswith('.weight') and v.dim() == 1):
        w = np.float32(1) + w
    return torch.from_numpy(w)


def load_pattern(net):
    sd = {k: pattern_for(k, v) for k, v in net.state_dict().items()}
    net.load_state_dict(sd)
    return [[k, list(v.shape)] for k, v in net.state_dict().items()]


def pattern_input(shape, scale):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    return torch.from_numpy((((i * 7919 + 13) % 2001) / 2000 * scale).astype(np.float32).reshape(shape))


def main():
    torch.manual_seed(0)
    tensors, meta = {}, {}
    nets = {
        # name: (module, input shape, input scale)
        # HED reads 0..255 pixels; with variance-preserving pattern weights that gives side outputs near 200, where
        # one float32 ulp is 1.5e-5 and summation order alone moves them past 1e-4. Input 0..25.5 keeps them in
        # the tens, the scale of the real model's logits.
        'hed': (aux('hed').ControlNetHED_Apache2(), [1, 3, 48, 64], 25.5),
        'lineart': (aux('lineart').Generator(3, 1, 3), [1, 3, 40, 48], 1.0),
        'mlsd': (aux('mlsd.models.mbv2_mlsd_large').MobileV2_MLSD_Large(), [1, 4, 64, 48], 1.0),
        'pidinet': (aux('pidi.model').pidinet(), [1, 3, 40, 48], 1.0),
    }
    for name, (net, shape, scale) in nets.items():
        keys = load_pattern(net)
        net.eval()
        x = pattern_input(shape, scale)
        with torch.no_grad():
            out = net(x)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        meta[name] = {'keys': keys, 'input': shape, 'scale': scale, 'outputs': [list(o.shape) for o in outs]}
        for k, o in enumerate(outs):
            tensors[f'{name}/{k}'] = o.numpy().astype(np.float32).reshape(-1)
        # a few weights, to check the TS pattern generator bit for bit
        k0 = keys[0][0]
        tensors[f'{name}/w0'] = net.state_dict()[k0].numpy().reshape(-1)[:64]
    # NormalBae (normal): NNET as controlnet_aux builds it; its decoder's test-mode output list, last = full res
    import types as _t
    nb_args = _t.SimpleNamespace(mode='client', architecture='BN', pretrained='scannet', sampling_ratio=0.4, importance_ratio=0.7)
    nnet = aux('normalbae.nets.NNET').NNET(nb_args)
    keys = load_pattern(nnet)
    nnet.eval()
    shape = [1, 3, 64, 96]
    x = pattern_input(shape, 2.0) - 1.0
    with torch.no_grad():
        out = nnet(x)[0][-1]
    meta['normalbae'] = {'keys': keys, 'input': shape, 'scale': 2.0, 'offset': -1.0, 'outputs': [list(out.shape)]}
    tensors['normalbae/0'] = out.numpy().astype(np.float32).reshape(-1)
    tensors['normalbae/w0'] = nnet.state_dict()[keys[0][0]].numpy().reshape(-1)[:64]
    save_fixture('annotators/checkpoints', tensors, meta)


if __name__ == '__main__':
    main()
