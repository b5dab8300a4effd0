"""The diffusers half of bench/gpu.sh: one CFG step (batch 2: ControlNet, then UNet) of SD 1.5 + one ControlNet 1.1.

Creates both networks with random weights (torch seed 0; ControlNet's zero-initialised output convs get small random
values so its residuals matter), rounds them to fp16 and saves them as diffusers folders (fp16 safetensors) under
--out, so our engine reads the very same weights. Then, on --device, times the step in fp16 with diffusers' default
attention (AttnProcessor2_0: torch scaled_dot_product_attention), records the peak memory torch allocated and the
device's used memory right after the fp16 steps (NVML, the figure nvidia-smi shows, taken before anything fp32 is
allocated: bench/gpu.sh's diffusers peak; None where nvidia-ml-py is absent, NVML fails, or on --device cpu), and
runs the step once more in fp32 (the same fp16-rounded weights, upcast) for the fp16-vs-fp32 difference. Writes the inputs
and both outputs to io.bin (+ a header in diffusers_result.json) for the engine's side to compare against.

Usage: python bench/gpu/diffusers_step.py --out DIR [--device cuda|cpu] [--size full|tiny] [--repeats N] [--diagnose]
--size tiny uses a 2-level, 32-channel UNet at 64x64 pixels (the --cpu-smoke mode of bench/gpu.sh).
--diagnose (bench/gpu.sh --diagnose) also times ControlNet alone and the UNet alone (fp16), saves the fp32 ControlNet
residuals to io.bin (res_down_<i>, res_mid: the engine feeds them to its UNet alone), and reports the fp16-vs-fp32
difference of ControlNet alone (all residuals) and of the UNet alone fed the fp32 residuals (rounded to fp16).
"""
import argparse, json, os, statistics, time
import numpy as np
import torch
from diffusers import UNet2DConditionModel, ControlNetModel

try:  # nvidia-ml-py: on the GPU machine, absent on CPU-only machines
    import pynvml
except ImportError:
    pynvml = None

UNET = {
    'act_fn': 'silu', 'attention_head_dim': 8, 'block_out_channels': [320, 640, 1280, 1280], 'center_input_sample': False,
    'cross_attention_dim': 768, 'down_block_types': ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    'downsample_padding': 1, 'flip_sin_to_cos': True, 'freq_shift': 0, 'in_channels': 4, 'layers_per_block': 2,
    'mid_block_scale_factor': 1, 'norm_eps': 1e-05, 'norm_num_groups': 32, 'out_channels': 4, 'sample_size': 64,
    'up_block_types': ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
}
TINY = dict(UNET, block_out_channels=[32, 64], down_block_types=['CrossAttnDownBlock2D', 'DownBlock2D'],
            up_block_types=['UpBlock2D', 'CrossAttnUpBlock2D'], cross_attention_dim=32, sample_size=8)


def controlnet_config(unet):
    c = {k: v for k, v in unet.items() if k not in ('out_channels', 'up_block_types', 'sample_size', 'center_input_sample')}
    c.update({'conditioning_embedding_out_channels': [16, 32, 96, 256], 'controlnet_conditioning_channel_order': 'rgb',
              'global_pool_conditions': False, 'use_linear_projection': False})
    return c


def write_raw(path, tensors):
    header, offset = {}, 0
    with open(path, 'wb') as f:
        for k, v in tensors.items():
            b = np.ascontiguousarray(v.detach().float().cpu().numpy()).tobytes()
            header[k] = {'shape': list(v.shape), 'offset': offset, 'length': len(b)}
            f.write(b)
            offset += len(b)
    return header


def device_used_mib(dev):
    """The device's used memory in MiB as nvidia-smi reports it (NVML, every process's), or None without NVML / CUDA."""
    if pynvml is None or dev.type != 'cuda':
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        print(f'diffusers_step.py: NVML unavailable ({e}); no device memory figure', flush=True)
        return None
    try:
        # torch's index is NVML's on a single-GPU machine (the one bench/gpu.sh is made for)
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index)).used // 2**20
    except pynvml.NVMLError as e:
        print(f'diffusers_step.py: NVML failed ({e}); no device memory figure', flush=True)
        return None
    finally:
        pynvml.nvmlShutdown()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--size', default='full', choices=['full', 'tiny'])
    ap.add_argument('--repeats', type=int, default=20)
    ap.add_argument('--diagnose', action='store_true')
    a = ap.parse_args()
    dev = torch.device(a.device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('diffusers_step.py: --device cuda but torch sees no CUDA device')
    torch.set_grad_enabled(False)
    torch.manual_seed(0)
    cfg = UNET if a.size == 'full' else TINY
    px = 512 if a.size == 'full' else 64
    t0 = time.time()
    unet = UNet2DConditionModel(**cfg).eval()
    cn = ControlNetModel(**controlnet_config(cfg)).eval()
    g = torch.Generator().manual_seed(1)
    for m in [*cn.controlnet_down_blocks, cn.controlnet_mid_block, cn.controlnet_cond_embedding.conv_out]:
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.01)
    unet.half()
    cn.half()
    unet.save_pretrained(os.path.join(a.out, 'unet'))
    cn.save_pretrained(os.path.join(a.out, 'controlnet'))
    create_s = time.time() - t0

    lat = px // 8
    sample = torch.randn(2, 4, lat, lat, generator=g)
    t = torch.tensor([501.0, 501.0])
    ehs = torch.randn(2, 77, cfg['cross_attention_dim'], generator=g)
    cond = torch.rand(2, 3, px, px, generator=g)

    def step(dtype):
        x, e, c = (v.to(dev, dtype) for v in (sample, ehs, cond))
        tt = t.to(dev)
        down, mid = cn(x, tt, e, c, conditioning_scale=1.0, return_dict=False)
        return unet(x, tt, e, down_block_additional_residuals=down, mid_block_additional_residual=mid).sample

    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    unet.to(dev)
    cn.to(dev)
    if dev.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    for _ in range(3):  # warm-up: cuDNN / SDPA kernel choice, allocator
        out16 = step(torch.float16)
    sync()
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        out16 = step(torch.float16)
        sync()
        times.append(time.perf_counter() - t0)
    peak_alloc = torch.cuda.max_memory_allocated() if dev.type == 'cuda' else None
    peak_reserved = torch.cuda.max_memory_reserved() if dev.type == 'cuda' else None
    # the fp16 run's footprint as the device sees it (torch's caching allocator still holds its peak), before fp32
    fp16_used_mib = device_used_mib(dev)
    diag = {}
    if a.diagnose:
        x, e, c = (v.to(dev, torch.float16) for v in (sample, ehs, cond))
        tt = t.to(dev)

        def timed(fn):
            fn()
            sync()
            ts = []
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                r = fn()
                sync()
                ts.append(time.perf_counter() - t0)
            return statistics.median(ts), r
        diag['cn_step_s_median'], (down16, mid16) = timed(lambda: cn(x, tt, e, c, conditioning_scale=1.0, return_dict=False))
        diag['unet_step_s_median'], _ = timed(lambda: unet(x, tt, e, down_block_additional_residuals=down16, mid_block_additional_residual=mid16).sample)
    unet.float()
    cn.float()
    # step(torch.float32), with the residuals kept
    x, e, c = (v.to(dev, torch.float32) for v in (sample, ehs, cond))
    tt = t.to(dev)
    down32, mid32 = cn(x, tt, e, c, conditioning_scale=1.0, return_dict=False)
    out32 = unet(x, tt, e, down_block_additional_residuals=down32, mid_block_additional_residual=mid32).sample
    sync()
    extra = {}
    if a.diagnose:
        extra = {f'res_down_{i}': r for i, r in enumerate(down32)}
        extra['res_mid'] = mid32
        num = sum(torch.sum((r16.float() - r32) ** 2) for r16, r32 in zip([*down16, mid16], [*down32, mid32]))
        den = sum(torch.sum(r32 ** 2) for r32 in [*down32, mid32])
        diag['cn_fp16_vs_fp32_rel_l2'] = torch.sqrt(num / den).item()
        unet.half()  # the weights were rounded to fp16 before saving: back to the same fp16 network
        u16 = unet(x.half(), tt, e.half(), down_block_additional_residuals=[r.half() for r in down32], mid_block_additional_residual=mid32.half()).sample
        diag['unet_fp16_vs_fp32_rel_l2'] = (torch.linalg.vector_norm(u16.float() - out32) / torch.linalg.vector_norm(out32)).item()
    header = write_raw(os.path.join(a.out, 'io.bin'), {
        'sample': sample, 'timestep': t, 'encoder_hidden_states': ehs, 'controlnet_cond': cond,
        'out_fp16': out16, 'out_fp32': out32, **extra,
    })
    rel = (torch.linalg.vector_norm(out16.float() - out32) / torch.linalg.vector_norm(out32)).item()
    result = {
        'torch': torch.__version__, 'device': torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu',
        'attention': type(unet.attn_processors[next(iter(unet.attn_processors))]).__name__,
        'create_and_save_s': create_s, 'step_s_median': statistics.median(times), 'step_s': times,
        'peak_allocated_bytes': peak_alloc, 'peak_reserved_bytes': peak_reserved, 'fp16_device_used_mib': fp16_used_mib,
        'nvml': pynvml is not None, 'fp16_vs_fp32_rel_l2': rel, **diag, 'io': header,
    }
    with open(os.path.join(a.out, 'diffusers_result.json'), 'w') as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k not in ('io', 'step_s')}))


if __name__ == '__main__':
    main()
