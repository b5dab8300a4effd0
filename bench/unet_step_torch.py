"""Reference half of the UNet-step benchmark (spawned by bench/unet-step.ts through the oracle virtualenv).

Creates a full-size SD 1.5 UNet and a ControlNet 1.1 (random weights, torch seed 0; ControlNet's zero-initialised
output convs get small random values so its residuals matter), saves both as diffusers folders (safetensors,
fp32) under --out, then times one classifier-free-guidance step (batch 2, 512x512: ControlNet then UNet) on the
torch CPU, and writes the inputs and the output so the TypeScript side can run the same step and compare.

With --step-only, loads the saved folders instead (from_pretrained) and times --repeats steps after a warm-up
on the saved inputs, printing the times and the process's peak resident memory (ru_maxrss): bench/unet-step.ts
runs this interleaved with its own step process (A B A B …).

Usage: python bench/unet_step_torch.py --out DIR [--threads N] [--repeats N] [--step-only]
"""
import argparse, json, os, resource, time
import numpy as np
import torch
from diffusers import UNet2DConditionModel, ControlNetModel

UNET = {
    'act_fn': 'silu', 'attention_head_dim': 8, 'block_out_channels': [320, 640, 1280, 1280], 'center_input_sample': False,
    'cross_attention_dim': 768, 'down_block_types': ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    'downsample_padding': 1, 'flip_sin_to_cos': True, 'freq_shift': 0, 'in_channels': 4, 'layers_per_block': 2,
    'mid_block_scale_factor': 1, 'norm_eps': 1e-05, 'norm_num_groups': 32, 'out_channels': 4, 'sample_size': 64,
    'up_block_types': ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
}
CONTROLNET = {k: v for k, v in UNET.items() if k not in ('out_channels', 'up_block_types', 'sample_size', 'center_input_sample')}
CONTROLNET.update({'conditioning_embedding_out_channels': [16, 32, 96, 256], 'controlnet_conditioning_channel_order': 'rgb',
                   'global_pool_conditions': False, 'use_linear_projection': False})


def write_raw(out, tensors):
    header, offset = {}, 0
    with open(os.path.join(out, 'io.bin'), 'wb') as f:
        for k, v in tensors.items():
            b = np.ascontiguousarray(v.detach().numpy().astype(np.float32)).tobytes()
            header[k] = {'shape': list(v.shape), 'offset': offset, 'length': len(b)}
            f.write(b)
            offset += len(b)
    return header


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--repeats', type=int, default=1)
    ap.add_argument('--step-only', action='store_true')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    if a.step_only:
        return step_only(a)
    torch.manual_seed(0)
    t0 = time.time()
    unet = UNet2DConditionModel(**UNET).eval()
    cn = ControlNetModel(**CONTROLNET).eval()
    g = torch.Generator().manual_seed(1)
    for m in [*cn.controlnet_down_blocks, cn.controlnet_mid_block, cn.controlnet_cond_embedding.conv_out]:
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.01)
    unet.save_pretrained(os.path.join(a.out, 'unet'))
    cn.save_pretrained(os.path.join(a.out, 'controlnet'))
    create_s = time.time() - t0

    sample = torch.randn(2, 4, 64, 64, generator=g)
    t = torch.tensor([501.0, 501.0])
    ehs = torch.randn(2, 77, 768, generator=g)
    cond = torch.rand(2, 3, 512, 512, generator=g)

    def step():
        down, mid = cn(sample, t, ehs, cond, conditioning_scale=1.0, return_dict=False)
        return unet(sample, t, ehs, down_block_additional_residuals=down, mid_block_additional_residual=mid).sample

    t0 = time.time()
    out = step()  # warm-up (allocator, oneDNN primitive caches)
    warm_s = time.time() - t0
    times = []
    for _ in range(a.repeats):
        t0 = time.time()
        out = step()
        times.append(time.time() - t0)
    header = write_raw(a.out, {'sample': sample, 'timestep': t, 'encoder_hidden_states': ehs, 'controlnet_cond': cond, 'out': out})
    result = {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'create_and_save_s': create_s,
              'warmup_step_s': warm_s, 'step_s': times, 'io': header}
    with open(os.path.join(a.out, 'torch_result.json'), 'w') as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != 'io'}))


def step_only(a):
    unet = UNet2DConditionModel.from_pretrained(os.path.join(a.out, 'unet')).eval()
    cn = ControlNetModel.from_pretrained(os.path.join(a.out, 'controlnet')).eval()
    header = json.load(open(os.path.join(a.out, 'torch_result.json')))['io']
    raw = open(os.path.join(a.out, 'io.bin'), 'rb').read()
    io = {k: torch.from_numpy(np.frombuffer(raw[h['offset']:h['offset'] + h['length']], dtype=np.float32).reshape(h['shape']).copy())
          for k, h in header.items()}

    def step():
        down, mid = cn(io['sample'], io['timestep'], io['encoder_hidden_states'], io['controlnet_cond'], conditioning_scale=1.0, return_dict=False)
        return unet(io['sample'], io['timestep'], io['encoder_hidden_states'], down_block_additional_residuals=down, mid_block_additional_residual=mid).sample

    step()
    times = []
    for _ in range(a.repeats):
        t0 = time.time()
        step()
        times.append(time.time() - t0)
    # ru_maxrss is in KiB on Linux
    print(json.dumps({'step_s': times, 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == '__main__':
    main()
