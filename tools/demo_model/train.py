"""Trains the demo model on CPU from a fixed seed, phase by phase, and exports it in diffusers' layout.

    python train.py WORK_DIR [--phases vae,latents,hints,joint,export] [--threads 2] [--max-minutes vae=10,joint=46]

The shipped model (assets/demo-model, see its README.md): vae (10 min), latents, hints, joint (46 min, with offset
noise), export, with --threads 2 on a 2-core machine otherwise idle: 58 minutes.

Phases (each writes its result under WORK_DIR, so a later run resumes after the last finished phase):
  vae       AutoencoderKL on random 64x64 crops of dataset images: MSE + L1 of the decoded posterior mean,
            + 0.1 mean variance (driven to ~0) + 1e-4 mean square of the latents.
  latents   encodes the first N_LATENT training images (posterior mean); scaling_factor = 1 / std; logs the VAE's
            held-out reconstruction scores.
  hints     the canny and scribble maps of those images (our annotators' algorithms, dataset.py).
  joint     text encoder, UNet and the canny and scribble ControlNets together from scratch (train_joint);
            joint_more continues them with a warm restart of the learning rate. Held-out scores are logged
            every EVAL_EVERY_SECONDS (quick_eval).
  export    fp16 safetensors: WORK_DIR/export/base (model_index.json, scheduler/, text_encoder/, tokenizer/, unet/,
            vae/) and WORK_DIR/export/controlnet-<type>/.
Earlier recipe, kept for reference (the first, unshipped run): decoder (the VAE decoder alone), unet / unet_more
(text encoder + UNet), canny / scribble (+ _more: ControlNets against a frozen UNet).
Everything runs with torch.set_num_threads(--threads) and torch.manual_seed(SEED + phase number).
"""
import argparse
import json
import math
import os
import shutil
import time

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, ControlNetModel, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

import dataset
import tokenizer as small_tokenizer

SEED = 0
N_LATENT = 6000
LATENT_FACTOR = 8  # 128x128 images -> 4x16x16 latents
VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, block_out_channels=(16, 32, 64, 64),
    down_block_types=('DownEncoderBlock2D',) * 4, up_block_types=('UpDecoderBlock2D',) * 4, norm_num_groups=8,
    sample_size=128,
)
TEXT = dict(
    hidden_size=64, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4, max_position_embeddings=77,
    hidden_act='quick_gelu', projection_dim=64,
)
UNET = dict(
    sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64, 64),
    down_block_types=('CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'),
    up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'),
    cross_attention_dim=64, attention_head_dim=4, norm_num_groups=32,
)
CONDITIONING_CHANNELS = (8, 16, 32, 32)  # 3 stride-2 convs: 128x128 hint -> 16x16, the latent size
SD15_SCHEDULER = {
    '_class_name': 'PNDMScheduler', '_diffusers_version': '0.6.0', 'beta_end': 0.012, 'beta_schedule': 'scaled_linear',
    'beta_start': 0.00085, 'clip_sample': False, 'num_train_timesteps': 1000, 'set_alpha_to_one': False,
    'skip_prk_steps': True, 'steps_offset': 1, 'trained_betas': None,
}
# Steps and batch sizes of the committed model (see README.md); --smoke divides the steps by 100.
STEPS = {'vae': 100000, 'vae_more': 100000, 'decoder': 100000, 'unet': 100000, 'unet_more': 100000, 'canny': 100000, 'scribble': 100000,
         'canny_more': 100000, 'scribble_more': 100000, 'joint': 100000, 'joint_more': 100000}  # the committed run: capped by --max-minutes (see README.md)
BATCH = {'joint': 32, 'vae': 8, 'vae_more': 8, 'decoder': 8, 'unet': 32, 'canny': 16, 'scribble': 16}
LR = {'joint': 1e-3, 'joint_more': 5e-4, 'vae': 1e-3, 'vae_more': 1e-3, 'decoder': 5e-4, 'unet': 1e-3, 'unet_more': 1e-3, 'canny': 1e-3, 'scribble': 1e-3}
VAE_CROP = 64  # the VAE trains on random 64x64 crops (4x cheaper; it is convolutional)
# --max-minutes caps each phase's wall time (the phase then ends early and logs how many steps it made).
DEVICE = torch.device('cpu')
MAX_SECONDS = {k: float('inf') for k in STEPS}
FLAT = None  # --flat DIR: each finished network also goes to DIR/<name>.safetensors (fp16 where > 16 MB in fp32)
DONE_STEPS = {}


def out_of_time(phase: str, step: int, t0: float) -> bool:
    if time.time() - t0 > MAX_SECONDS[phase]:
        log(f'{phase}: time cap reached after {step} steps')
        return True
    return False


def finished(phase: str, name: str, model, steps: int) -> None:
    DONE_STEPS[phase] = steps
    if FLAT:
        from safetensors.torch import save_file
        sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(sd, os.path.join(FLAT, f'{name}.safetensors'))
        with open(os.path.join(FLAT, 'meta.json'), 'w') as f:
            json.dump({'steps': DONE_STEPS, 'scaling_factor': SCALING.get('v')}, f)


SCALING = {}


def log(msg: str) -> None:
    print(time.strftime('%H:%M:%S'), msg, flush=True)


def images(seed: int, indices) -> torch.Tensor:
    """[B,3,128,128] float in [-1, 1]."""
    x = np.stack([dataset.sample(seed, int(i)).image for i in indices])
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1


def schedule(opt, steps: int, phase: str, warmup: int = 50):
    """Linear warm-up, then cosine decay to 0 over the steps, or over the phase's --max-minutes when one is set
    (then the progress is the elapsed fraction of that time, so the decay ends with the phase)."""
    t0 = time.time()
    cap = MAX_SECONDS[phase]
    def f(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = (time.time() - t0) / cap if cap != float('inf') else (step - warmup) / max(1, steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def train_vae(work: str, steps: int, more: bool = False) -> None:
    """more: continue WORK_DIR/vae (a warm restart of the learning-rate schedule, phase vae_more)."""
    phase = 'vae_more' if more else 'vae'
    torch.manual_seed(SEED + (2 if more else 1))
    vae = (AutoencoderKL.from_pretrained(os.path.join(work, 'vae')) if more else AutoencoderKL(**VAE)).to(DEVICE)
    opt = torch.optim.AdamW(vae.parameters(), lr=LR['vae'], weight_decay=0)
    sched = schedule(opt, steps, phase)
    rng = np.random.default_rng(SEED + (2 if more else 1))
    t0 = time.time()
    for step in range(steps):
        if out_of_time(phase, step, t0):
            break
        x = images(SEED, rng.integers(0, 10**9, BATCH['vae']))
        oy, ox = rng.integers(0, dataset.SIZE - VAE_CROP + 1, 2)
        x = x[:, :, oy:oy + VAE_CROP, ox:ox + VAE_CROP].to(DEVICE)
        post = vae.encode(x).latent_dist
        # decoding the posterior mean learns in minutes (decoding samples of the initial unit variance does not);
        # the variance is driven to ~0 so that encode().sample() (img2img) stays near the mean
        rec = vae.decode(post.mean).sample
        loss = F.mse_loss(rec, x) + 0.5 * F.l1_loss(rec, x) + 0.1 * post.var.mean() + 1e-4 * post.mean.square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            log(f'{phase} step {step} loss {loss.item():.4f} ({(step + 1) / (time.time() - t0):.2f} it/s)')
    vae.save_pretrained(os.path.join(work, 'vae'))
    DONE_STEPS[phase] = step + 1


def train_decoder(work: str, steps: int) -> None:
    """Phase decoder: after the latents are fixed, the VAE's decoder alone trains on (it does not change the
    latent space the UNet learns, so this phase may run beside unet). Writes WORK_DIR/vae_decoder."""
    torch.manual_seed(SEED + 7)
    vae = AutoencoderKL.from_pretrained(os.path.join(work, 'vae')).to(DEVICE)
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    opt = torch.optim.AdamW(params, lr=LR['decoder'], weight_decay=0)
    sched = schedule(opt, steps, 'decoder')
    rng = np.random.default_rng(SEED + 7)
    t0 = time.time()
    for step in range(steps):
        if out_of_time('decoder', step, t0):
            break
        x = images(SEED, rng.integers(0, 10**9, BATCH['decoder']))
        oy, ox = rng.integers(0, dataset.SIZE - VAE_CROP + 1, 2)
        x = x[:, :, oy:oy + VAE_CROP, ox:ox + VAE_CROP].to(DEVICE)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mean
        rec = vae.decode(z).sample
        loss = F.mse_loss(rec, x) + 0.5 * F.l1_loss(rec, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0:
            log(f'decoder step {step} loss {loss.item():.4f} ({(step + 1) / (time.time() - t0):.2f} it/s)')
    vae.save_pretrained(os.path.join(work, 'vae_decoder'))
    DONE_STEPS['decoder'] = step + 1
    log(f'decoder: {step + 1} steps')


@torch.no_grad()
def encode_latents(work: str, n: int) -> None:
    vae = AutoencoderKL.from_pretrained(os.path.join(work, 'vae')).to(DEVICE).eval()
    out = []
    for i in range(0, n, 100):
        out.append(vae.encode(images(SEED, range(i, min(n, i + 100))).to(DEVICE)).latent_dist.mean.cpu())
    lat = torch.cat(out)
    scale = 1 / lat.std().item()
    vae.register_to_config(scaling_factor=scale)
    vae.save_pretrained(os.path.join(work, 'vae'))
    captions = [dataset.sample(SEED, i).caption for i in range(n)]
    torch.save({'latents': lat * scale, 'captions': captions}, os.path.join(work, 'latents.pt'))
    SCALING['v'] = scale
    log(f'vae held-out reconstruction: {vae_check(vae)}')
    finished('vae', 'vae', vae, DONE_STEPS.get('vae'))
    log(f'latents {tuple(lat.shape)} mean {lat.mean().item():.3f} std {lat.std().item():.3f} -> scaling_factor {scale:.4f}')


@torch.no_grad()
def vae_check(vae, n: int = 48) -> str:
    """Shape / background colour accuracy of VAE reconstructions of held-out images (evaluate.py's scores)."""
    samples = [dataset.sample(1, i) for i in range(n)]
    x = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).float() / 127.5 - 1
    sc = held_out_scores(vae.decode(vae.encode(x).latent_dist.mean).sample, samples)
    return f"shape {sc['shape_ok']:.2f} bg {sc['background_ok']:.2f} shape error {sc['shape_error']:.1f}"


def held_out_scores(decoded: torch.Tensor, samples) -> dict:
    """evaluate.py's scores of decoded images ([n,3,128,128] in [-1, 1]) against their samples, averaged per score."""
    import evaluate
    img = ((decoded + 1) * 127.5).clamp(0, 255).round().permute(0, 2, 3, 1).to(torch.uint8).numpy()
    sc = [evaluate.scores(img[i], s) for i, s in enumerate(samples)]
    return {k: float(np.mean([r[k] for r in sc])) for k in sc[0]}


def noise_scheduler() -> DDPMScheduler:
    return DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule='scaled_linear', num_train_timesteps=1000)


def token_ids(tok: CLIPTokenizer, captions: list[str]) -> torch.Tensor:
    return tok(captions, padding='max_length', max_length=77, truncation=True, return_tensors='pt').input_ids


def load_tokenizer(work: str) -> CLIPTokenizer:
    d = os.path.join(work, 'tokenizer')
    small_tokenizer.save(d)
    return CLIPTokenizer.from_pretrained(d)


def text_encoder_config(tok: CLIPTokenizer) -> CLIPTextConfig:
    return CLIPTextConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id, **TEXT)


def diffusion_batch(data, idx, tok, drop: float, rng, sched, offset: float = 0.0):
    """Noisy latents at random timesteps. offset > 0 adds offset noise (Guttenberg 2023, "Diffusion with Offset
    Noise"): a per-image, per-channel constant of std `offset` joins the Gaussian noise, so that the latents' mean
    (the background's colour here) is hidden at the high timesteps where sampling starts (see OFFSET_NOISE)."""
    lat = data['latents'][idx]
    caps = ['' if rng.random() < drop else data['captions'][i] for i in idx]
    noise = torch.randn_like(lat)
    if offset:
        noise = noise + offset * torch.randn(lat.shape[0], lat.shape[1], 1, 1)
    t = torch.randint(0, 1000, (len(idx),))
    noisy = sched.add_noise(lat, noise, t)
    return noisy.to(DEVICE), noise.to(DEVICE), t.to(DEVICE), token_ids(tok, caps).to(DEVICE)


def train_unet(work: str, steps: int, more: bool = False) -> None:
    """more: continue WORK_DIR/unet and text_encoder (a warm restart of the learning rate, phase unet_more)."""
    phase = 'unet_more' if more else 'unet'
    torch.manual_seed(SEED + (8 if more else 3))
    tok = load_tokenizer(work)
    data = torch.load(os.path.join(work, 'latents.pt'))
    if more:
        text = CLIPTextModel.from_pretrained(os.path.join(work, 'text_encoder')).to(DEVICE)
        unet = UNet2DConditionModel.from_pretrained(os.path.join(work, 'unet')).to(DEVICE)
    else:
        text = CLIPTextModel(text_encoder_config(tok)).to(DEVICE)
        unet = UNet2DConditionModel(**UNET).to(DEVICE)
    text.train()
    unet.train()
    params = list(unet.parameters()) + list(text.parameters())
    opt = torch.optim.AdamW(params, lr=LR[phase], weight_decay=1e-2)
    lr_sched = schedule(opt, steps, phase)
    sched = noise_scheduler()
    rng = np.random.default_rng(SEED + (8 if more else 3))
    n = len(data['captions'])
    t0 = time.time()
    for step in range(steps):
        if out_of_time(phase, step, t0):
            break
        idx = rng.integers(0, n, BATCH['unet'])
        noisy, noise, t, ids = diffusion_batch(data, idx, tok, 0.1, rng, sched)
        cond = text(ids).last_hidden_state
        loss = F.mse_loss(unet(noisy, t, cond).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        lr_sched.step()
        if step % 50 == 0 or step == steps - 1:
            log(f'{phase} step {step} loss {loss.item():.4f} ({(step + 1) / (time.time() - t0):.2f} it/s)')
    unet.save_pretrained(os.path.join(work, 'unet'))
    text.save_pretrained(os.path.join(work, 'text_encoder'))
    finished('unet', 'text_encoder', text, step + 1)
    finished('unet', 'unet', unet, step + 1)


def hints(kind: str, idx) -> torch.Tensor:
    """[B,3,128,128] in [0, 1], as the pipeline feeds control images."""
    h = np.stack([dataset.hint_rgb(kind, dataset.sample(SEED, int(i)).image) for i in idx])
    return torch.from_numpy(h).permute(0, 3, 1, 2).float() / 255


def train_controlnet(work: str, kind: str, steps: int, more: bool = False) -> None:
    """more: continue WORK_DIR/controlnet-<kind> (a warm restart of the learning rate, phase <kind>_more)."""
    phase = f'{kind}_more' if more else kind
    torch.manual_seed(SEED + 4 + list(dataset.HINTS).index(kind) + (10 if more else 0))
    tok = load_tokenizer(work)
    data = torch.load(os.path.join(work, 'latents.pt'))
    text = CLIPTextModel.from_pretrained(os.path.join(work, 'text_encoder')).to(DEVICE).eval().requires_grad_(False)
    unet = UNet2DConditionModel.from_pretrained(os.path.join(work, 'unet')).to(DEVICE).eval().requires_grad_(False)
    if more:
        cn = ControlNetModel.from_pretrained(os.path.join(work, f'controlnet-{kind}')).to(DEVICE)
    else:
        cn = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=CONDITIONING_CHANNELS).to(DEVICE)
    cn.train()
    opt = torch.optim.AdamW(cn.parameters(), lr=LR[kind], weight_decay=1e-2)
    lr_sched = schedule(opt, steps, phase)
    sched = noise_scheduler()
    rng = np.random.default_rng(SEED + 4)
    n = len(data['captions'])
    t0 = time.time()
    for step in range(steps):
        if out_of_time(phase, step, t0):
            break
        idx = rng.integers(0, n, BATCH[kind])
        noisy, noise, t, ids = diffusion_batch(data, idx, tok, 0.3, rng, sched)
        with torch.no_grad():
            cond = text(ids).last_hidden_state
        down, mid = cn(noisy, t, cond, controlnet_cond=hints(kind, idx).to(DEVICE), return_dict=False)
        pred = unet(noisy, t, cond, down_block_additional_residuals=down, mid_block_additional_residual=mid).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(cn.parameters(), 1.0)
        opt.step()
        lr_sched.step()
        if step % 50 == 0 or step == steps - 1:
            log(f'{phase} step {step} loss {loss.item():.4f} ({(step + 1) / (time.time() - t0):.2f} it/s)')
    cn.save_pretrained(os.path.join(work, f'controlnet-{kind}'))
    finished(kind, f'controlnet-{kind}', cn, step + 1)


JOINT_MODES = (('none', 0.4), ('canny', 0.3), ('scribble', 0.3))  # per step: which ControlNet (if any) joins
# Offset noise of the joint phase. SD's schedule keeps sqrt(alphas_cumprod[999]) = 0.068 of the signal at t = 999;
# with 16x16 latents the noise's own per-channel mean has std 1/16 = 0.0625, about what the background's latent mean
# (std 0.5-1.0 over the dataset) leaks through (0.036-0.069): a model trained on plain noise reads the background's
# colour from the input and, sampling from pure noise, paints a random one whatever the prompt says (the first shipped
# run: 21% right, chance 12.5%). 0.3 makes that leak ~0.2 of the mean's noise at t = 999. Inference is unchanged.
OFFSET_NOISE = 0.3
MIN_SNR_GAMMA = 5.0  # Min-SNR weighting (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting")


def precompute_hints(work: str, n: int) -> None:
    """WORK_DIR/hints.pt: uint8 [n,128,128] canny and scribble maps of the first n training images."""
    out = {k: torch.from_numpy(np.stack([dataset.HINTS[k](dataset.sample(SEED, i).image) for i in range(n)]))
           for k in dataset.HINTS}
    torch.save(out, os.path.join(work, 'hints.pt'))
    log(f'hints for {n} images')


def hint_batch(maps: torch.Tensor, idx) -> torch.Tensor:
    """[B,3,128,128] in [0, 1] from uint8 maps, as the pipeline feeds control images."""
    return (maps[idx].float() / 255)[:, None].expand(-1, 3, -1, -1).contiguous()


@torch.no_grad()
def quick_eval(text, unet, nets, tok, vae, n: int = 16) -> str:
    """Held-out check during training: DDIM 10 steps, CFG 5, on dataset seed 1: shape / background colour accuracy
    (evaluate.py's scores) with the canny hint and without any hint."""
    from diffusers import DDIMScheduler
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule='scaled_linear', clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)
    text.eval(); unet.eval(); [c.eval() for c in nets.values()]
    samples = [dataset.sample(1, i) for i in range(n)]
    cond = text(token_ids(tok, [s.caption for s in samples])).last_hidden_state
    uncond = text(token_ids(tok, [''] * n)).last_hidden_state
    parts = []
    for kind in ('canny', None):
        g = torch.Generator().manual_seed(1234)
        x = torch.randn(n, 4, 16, 16, generator=g)
        sched.set_timesteps(10)
        hint = None
        if kind:
            hint = torch.from_numpy(np.stack([dataset.HINTS[kind](s.image) for s in samples])).float() / 255
            hint = hint[:, None].expand(-1, 3, -1, -1).repeat(2, 1, 1, 1)
        for t in sched.timesteps:
            xx, cc = torch.cat([x, x]), torch.cat([uncond, cond])
            extra = {}
            if kind:
                d, m = nets[kind](xx, t, cc, controlnet_cond=hint, return_dict=False)
                extra = dict(down_block_additional_residuals=d, mid_block_additional_residual=m)
            e_u, e_c = unet(xx, t, cc, **extra).sample.chunk(2)
            x = sched.step(e_u + 5.0 * (e_c - e_u), t, x).prev_sample
        sc = held_out_scores(vae.decode(x / vae.config.scaling_factor).sample, samples)
        parts.append(f"{kind or 'none'}: shape {sc['shape_ok']:.2f} bg {sc['background_ok']:.2f} iou {sc['edge_iou']:.2f}")
    text.train(); unet.train(); [c.train() for c in nets.values()]
    return ' | '.join(parts)


def train_joint(work: str, steps: int, more: bool = False) -> None:
    """Phase joint: text encoder, UNet and the canny and scribble ControlNets trained together from scratch. Each
    step picks one mode (JOINT_MODES): no ControlNet (the base model alone, so scale 0 and plain txt2img work) or
    one ControlNet whose residuals the UNet adds, as the pipeline does. As nothing is pretrained, the ControlNets'
    output convolutions start from PyTorch's default initialisation rather than zero (the zero init protects a
    pretrained UNet; here it would only delay the hint's effect). Epsilon loss with Min-SNR-5 weights.
    more: continue the saved networks (phase joint_more: a warm restart of the learning-rate schedule)."""
    phase = 'joint_more' if more else 'joint'
    torch.manual_seed(SEED + (9 if more else 3))
    tok = load_tokenizer(work)
    data = torch.load(os.path.join(work, 'latents.pt'))
    maps = torch.load(os.path.join(work, 'hints.pt'))
    vae = AutoencoderKL.from_pretrained(os.path.join(work, 'vae')).eval().requires_grad_(False)
    if more:
        text = CLIPTextModel.from_pretrained(os.path.join(work, 'text_encoder'))
        unet = UNet2DConditionModel.from_pretrained(os.path.join(work, 'unet'))
        nets = {k: ControlNetModel.from_pretrained(os.path.join(work, f'controlnet-{k}')) for k in dataset.HINTS}
    else:
        text = CLIPTextModel(text_encoder_config(tok))
        unet = UNet2DConditionModel(**UNET)
        nets = {}
        for kind in dataset.HINTS:
            cn = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=CONDITIONING_CHANNELS)
            for m in [*cn.controlnet_down_blocks, cn.controlnet_mid_block, cn.controlnet_cond_embedding.conv_out]:
                m.reset_parameters()
            nets[kind] = cn
    for m in [text, unet, *nets.values()]:
        m.train()
    modules = [text, unet, *nets.values()]
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=LR[phase], weight_decay=1e-2)
    lr_sched = schedule(opt, steps, phase)
    sched = noise_scheduler()
    snr = sched.alphas_cumprod / (1 - sched.alphas_cumprod)
    weight = torch.clamp(snr, max=MIN_SNR_GAMMA) / snr
    rng = np.random.default_rng(SEED + (9 if more else 3))
    n = len(data['captions'])
    names, probs = zip(*JOINT_MODES)
    t0 = time.time()
    last_eval = t0
    for step in range(steps):
        if out_of_time(phase, step, t0):
            break
        mode = names[rng.choice(len(names), p=probs)]
        idx = rng.integers(0, n, BATCH['joint'])
        noisy, noise, t, ids = diffusion_batch(data, idx, tok, 0.1, rng, sched, OFFSET_NOISE)
        cond = text(ids).last_hidden_state
        extra = {}
        if mode != 'none':
            d, m = nets[mode](noisy, t, cond, controlnet_cond=hint_batch(maps[mode], idx), return_dict=False)
            extra = dict(down_block_additional_residuals=d, mid_block_additional_residual=m)
        pred = unet(noisy, t, cond, **extra).sample
        loss = (F.mse_loss(pred, noise, reduction='none').mean((1, 2, 3)) * weight[t]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        lr_sched.step()
        if step % 50 == 0:
            log(f'{phase} step {step} ({mode}) loss {loss.item():.4f} ({(step + 1) / (time.time() - t0):.2f} it/s)')
        if time.time() - last_eval > EVAL_EVERY_SECONDS:
            log(f'{phase} step {step} held-out: {quick_eval(text, unet, nets, tok, vae)}')
            last_eval = time.time()
    log(f'{phase}: {step + 1} steps; held-out: {quick_eval(text, unet, nets, tok, vae)}')
    unet.save_pretrained(os.path.join(work, 'unet'))
    text.save_pretrained(os.path.join(work, 'text_encoder'))
    for kind, cn in nets.items():
        cn.save_pretrained(os.path.join(work, f'controlnet-{kind}'))
    DONE_STEPS[phase] = step + 1


EVAL_EVERY_SECONDS = 360


def import_flat(work: str, flat: str) -> None:
    """Rebuilds WORK_DIR's networks from a --flat folder (training run elsewhere, e.g. on a GPU machine)."""
    from safetensors.torch import load_file
    meta = json.load(open(os.path.join(flat, 'meta.json')))
    tok = load_tokenizer(work)
    vae = AutoencoderKL(**VAE)
    vae.load_state_dict(load_file(os.path.join(flat, 'vae.safetensors')))
    vae.register_to_config(scaling_factor=meta['scaling_factor'])
    vae.save_pretrained(os.path.join(work, 'vae'))
    text = CLIPTextModel(text_encoder_config(tok))
    text.load_state_dict(load_file(os.path.join(flat, 'text_encoder.safetensors')))
    text.save_pretrained(os.path.join(work, 'text_encoder'))
    unet = UNet2DConditionModel(**UNET)
    unet.load_state_dict(load_file(os.path.join(flat, 'unet.safetensors')))
    unet.save_pretrained(os.path.join(work, 'unet'))
    for kind in dataset.HINTS:
        f = os.path.join(flat, f'controlnet-{kind}.safetensors')
        if os.path.exists(f):
            cn = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=CONDITIONING_CHANNELS)
            cn.load_state_dict(load_file(f))
            cn.save_pretrained(os.path.join(work, f'controlnet-{kind}'))
    log(f'imported {flat}: steps {meta["steps"]}')


def export(work: str) -> None:
    out = os.path.join(work, 'export')
    shutil.rmtree(out, ignore_errors=True)
    base = os.path.join(out, 'base')
    vae = AutoencoderKL.from_pretrained(os.path.join(work, 'vae'))
    if os.path.isdir(os.path.join(work, 'vae_decoder')):
        # the decoder phase may have loaded WORK_DIR/vae before the latents phase set its scaling_factor
        scaling = vae.config.scaling_factor
        vae = AutoencoderKL.from_pretrained(os.path.join(work, 'vae_decoder'))
        vae.register_to_config(scaling_factor=scaling)
    vae.half().save_pretrained(os.path.join(base, 'vae'))
    UNet2DConditionModel.from_pretrained(os.path.join(work, 'unet')).half().save_pretrained(os.path.join(base, 'unet'))
    CLIPTextModel.from_pretrained(os.path.join(work, 'text_encoder')).half().save_pretrained(os.path.join(base, 'text_encoder'))
    small_tokenizer.save(os.path.join(base, 'tokenizer'))
    os.makedirs(os.path.join(base, 'scheduler'))
    with open(os.path.join(base, 'scheduler', 'scheduler_config.json'), 'w') as f:
        json.dump(SD15_SCHEDULER, f, indent=2)
    with open(os.path.join(base, 'model_index.json'), 'w') as f:
        json.dump({
            '_class_name': 'StableDiffusionPipeline', '_diffusers_version': '0.42.1', 'requires_safety_checker': False,
            'scheduler': ['diffusers', 'PNDMScheduler'], 'text_encoder': ['transformers', 'CLIPTextModel'],
            'tokenizer': ['transformers', 'CLIPTokenizer'], 'unet': ['diffusers', 'UNet2DConditionModel'],
            'vae': ['diffusers', 'AutoencoderKL'], 'safety_checker': [None, None], 'feature_extractor': [None, None],
        }, f, indent=2)
    for kind in dataset.HINTS:
        src = os.path.join(work, f'controlnet-{kind}')
        if os.path.isdir(src):
            ControlNetModel.from_pretrained(src).half().save_pretrained(os.path.join(out, f'controlnet-{kind}'))
    log(f'exported to {out}')


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('work')
    p.add_argument('--phases', default='vae,latents,unet,canny,scribble,export')
    p.add_argument('--smoke', action='store_true', help='1/100 of the steps (timing runs)')
    p.add_argument('--force', action='store_true', help='redo phases whose output exists')
    p.add_argument('--device', default='cpu')
    p.add_argument('--max-minutes', default='', help='per-phase wall-time caps, e.g. vae=1.2,unet=3.5')
    p.add_argument('--threads', type=int, default=1, help='torch threads (2 only with the machine to itself)')
    p.add_argument('--flat', help='also write each finished network to FLAT/<name>.safetensors + meta.json')
    a = p.parse_args()
    global DEVICE, FLAT
    DEVICE = torch.device(a.device)
    FLAT = a.flat
    if FLAT:
        os.makedirs(FLAT, exist_ok=True)
    for kv in filter(None, a.max_minutes.split(',')):
        k, v = kv.split('=')
        MAX_SECONDS[k] = 60 * float(v)
    # one thread: on the shared 2-core machine two threads ran 5-8x slower (OpenMP barriers wait on the other)
    torch.set_num_threads(a.threads)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    os.makedirs(a.work, exist_ok=True)
    steps = {k: 2 if a.smoke else v for k, v in STEPS.items()}
    if a.smoke:
        BATCH.update({k: 2 for k in BATCH})
    n_latent = 200 if a.smoke else N_LATENT
    done = lambda name: os.path.exists(os.path.join(a.work, name)) and not a.force
    for phase in a.phases.split(','):
        t0 = time.time()
        if phase == 'vae' and not done('vae'):
            train_vae(a.work, steps['vae'])
        elif phase == 'vae_more' and not done('vae_more.done'):
            train_vae(a.work, steps['vae_more'], more=True)
            open(os.path.join(a.work, 'vae_more.done'), 'w').close()
        elif phase == 'latents' and not done('latents.pt'):
            encode_latents(a.work, n_latent)
        elif phase == 'decoder' and not done('vae_decoder'):
            train_decoder(a.work, steps['decoder'])
        elif phase == 'hints' and not done('hints.pt'):
            precompute_hints(a.work, n_latent)
        elif phase == 'joint' and not done('unet'):
            train_joint(a.work, steps['joint'])
        elif phase == 'joint_more' and not done('joint_more.done'):
            train_joint(a.work, steps['joint'], more=True)
            open(os.path.join(a.work, 'joint_more.done'), 'w').close()
        elif phase == 'unet' and not done('unet'):
            train_unet(a.work, steps['unet'])
        elif phase == 'unet_more' and not done('unet_more.done'):
            train_unet(a.work, steps['unet_more'], more=True)
            open(os.path.join(a.work, 'unet_more.done'), 'w').close()
        elif phase.endswith('_more') and phase[:-5] in dataset.HINTS:
            train_controlnet(a.work, phase[:-5], steps[phase[:-5]], more=True)
        elif phase in dataset.HINTS and not done(f'controlnet-{phase}'):
            train_controlnet(a.work, phase, steps[phase])
        elif phase == 'import':
            import_flat(a.work, a.flat)
        elif phase == 'export':
            export(a.work)
        else:
            log(f'{phase}: already done')
            continue
        log(f'phase {phase} took {time.time() - t0:.0f} s')


if __name__ == '__main__':
    main()
