"""Reference trajectories for src/engine/schedulers (diffusers 0.42.1, torch CPU).

For every scheduler class and option combination the API can produce (use_karras_sigmas on/off where the class
supports it, each DPMSolverMultistep algorithm_type, 1/2/21/30/31/50 steps, epsilon and v_prediction) this
records the timesteps, the sigmas, and a whole denoising loop driven by a cheap deterministic fake model
(model_output = tanh(0.5*x_in + t/1000), computed in float64 then cast) on a 1x4x8x8 latent, with the initial
noise and every stochastic step drawn from one seeded CPU generator (as the diffusers pipelines do). It also
records img2img (strength 0.55) timesteps + add_noise + loop, DDIM with eta, the noise schedules, and the
step functions of KarrasVe / ScoreSdeVe / DDIMInverse on fake inputs.
Writes tests/fixtures/schedulers/*.{json,bin}.
"""
import math, traceback
import numpy as np
import torch
import diffusers
from diffusers.schedulers.deprecated import KarrasVeScheduler
from common import save_fixture

torch.set_num_threads(1)

SD15 = {  # runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json
    '_class_name': 'PNDMScheduler', 'beta_end': 0.012, 'beta_schedule': 'scaled_linear', 'beta_start': 0.00085,
    'num_train_timesteps': 1000, 'set_alpha_to_one': False, 'skip_prk_steps': True, 'steps_offset': 1,
    'trained_betas': None, 'clip_sample': False,
}
KARRAS = {'LMSDiscreteScheduler', 'EulerDiscreteScheduler', 'DPMSolverMultistepScheduler', 'HeunDiscreteScheduler',
          'KDPM2DiscreteScheduler', 'DPMSolverSinglestepScheduler', 'KDPM2AncestralDiscreteScheduler',
          'UniPCMultistepScheduler', 'DEISMultistepScheduler'}
REGULAR = ['DDPMScheduler', 'DDIMScheduler', 'PNDMScheduler', 'LMSDiscreteScheduler', 'EulerDiscreteScheduler',
           'EulerAncestralDiscreteScheduler', 'DPMSolverMultistepScheduler', 'HeunDiscreteScheduler',
           'KDPM2DiscreteScheduler', 'DPMSolverSinglestepScheduler', 'KDPM2AncestralDiscreteScheduler',
           'UniPCMultistepScheduler', 'DEISMultistepScheduler', 'IPNDMScheduler', 'LCMScheduler']
STEPS = [1, 2, 21, 30, 31, 50]
ALGOS = [None, 'dpmsolver', 'dpmsolver++', 'sde-dpmsolver', 'sde-dpmsolver++']
SHAPE = (1, 4, 8, 8)
SEED = 1234


def overrides(name, karras, algo, pred):
    """The kwargs our registry passes to from_config for these request options."""
    kw = {'prediction_type': pred}
    if name in KARRAS:
        kw['use_karras_sigmas'] = karras
    if algo is not None:
        kw['algorithm_type'] = algo
        if algo in ('dpmsolver', 'sde-dpmsolver'):
            kw['final_sigmas_type'] = 'sigma_min'  # diffusers rejects 'zero' for these; our registry does the same
    return kw


def make(name, kw):
    return getattr(diffusers, name).from_config(SD15, **kw)


def fake_model(x, t):
    return torch.tanh(x.double() * 0.5 + float(t) / 1000).float()


def loop(s, timesteps, latents, g, eta=None):
    mid = None
    for i, t in enumerate(timesteps):
        x_in = s.scale_model_input(latents, t)
        eps = fake_model(x_in, t)
        kw = {}
        if 'generator' in s.step.__code__.co_varnames:
            kw['generator'] = g
        if eta is not None:
            kw['eta'] = eta
        latents = s.step(eps, t, latents, **kw).prev_sample
        if i == 0:
            mid = latents.clone()
    return latents, mid


def key_of(name, steps, karras, algo, pred):
    return f'{name}|{steps}|{"k" if karras else "-"}|{algo or "none"}|{pred}'


def init_image_latents():
    i = torch.arange(int(np.prod(SHAPE)), dtype=torch.float64).reshape(SHAPE)
    return (torch.sin(i * 0.37) * 0.8).float()


cases, tensors = [], {}
n = 0
for name in REGULAR:
    for steps in STEPS:
        for pred in ('epsilon', 'v_prediction'):
            if name == 'IPNDMScheduler' and pred != 'epsilon':
                continue  # IPNDM has no prediction_type
            for karras in ([False, True] if name in KARRAS else [False]):
                for algo in (ALGOS if name == 'DPMSolverMultistepScheduler' else [None]):
                    key = key_of(name, steps, karras, algo, pred)
                    kw = overrides(name, karras, algo, pred)
                    case = {'key': key, 'name': name, 'steps': steps, 'karras': karras, 'algo': algo or 'none',
                            'prediction_type': pred, 'overrides': kw}
                    try:
                        s = make(name, kw)
                        s.set_timesteps(steps)
                        ts = s.timesteps.clone()
                        sig = getattr(s, 'sigmas', None)
                        g = torch.Generator('cpu').manual_seed(SEED)
                        latents = torch.randn(SHAPE, generator=g) * s.init_noise_sigma
                        out, mid = loop(s, ts, latents, g)
                        tensors[f'{n}.timesteps'] = ts.double().numpy().astype(np.float64)
                        tensors[f'{n}.timesteps64'] = ts.double().numpy().view(np.int64)  # exact bits of float64
                        if sig is not None and isinstance(sig, torch.Tensor):
                            tensors[f'{n}.sigmas'] = sig.float()
                        tensors[f'{n}.init_noise_sigma'] = np.array([float(s.init_noise_sigma)], dtype=np.float32)
                        tensors[f'{n}.final'] = out
                        tensors[f'{n}.first'] = mid
                        case['id'] = n
                    except (ValueError, NotImplementedError, AssertionError, UnboundLocalError, IndexError) as e:
                        # diffusers rejects the combination: ours must too
                        case['error'] = f'{type(e).__name__}: {e}'
                    cases.append(case)
                    n += 1

# Config variants other models ship: leading/trailing spacing, the cosine schedule, zero-terminal-SNR v-models.
VARIANT_CONFIGS = [
    {'timestep_spacing': 'leading'}, {'timestep_spacing': 'trailing'},
    {'beta_schedule': 'squaredcos_cap_v2'},
    {'rescale_betas_zero_snr': True, 'prediction_type': 'v_prediction', 'timestep_spacing': 'trailing'},
    {'thresholding': True, 'sample_max_value': 1.5},
    {'clip_sample': True},
    {'solver_order': 3}, {'solver_type': 'heun'},
]
variants = []
for extra in VARIANT_CONFIGS:
    for name in REGULAR:
        if name == 'IPNDMScheduler':
            continue
        keys = set(getattr(diffusers, name).from_config(SD15).config.keys())
        if not set(extra) <= keys:
            continue  # the class has no such option
        for steps in (21, 30):
            case = {'name': name, 'steps': steps, 'overrides': extra, 'id': n}
            try:
                s = make(name, extra)
                s.set_timesteps(steps)
                ts = s.timesteps.clone()
                sig = getattr(s, 'sigmas', None)
                g = torch.Generator('cpu').manual_seed(SEED)
                latents = torch.randn(SHAPE, generator=g) * s.init_noise_sigma
                out, mid = loop(s, ts, latents, g)
                tensors[f'{n}.timesteps64'] = ts.double().numpy().view(np.int64)
                if sig is not None and isinstance(sig, torch.Tensor):
                    tensors[f'{n}.sigmas'] = sig.float()
                tensors[f'{n}.init_noise_sigma'] = np.array([float(s.init_noise_sigma)], dtype=np.float32)
                tensors[f'{n}.final'] = out
                tensors[f'{n}.first'] = mid
            except (ValueError, NotImplementedError, AssertionError, UnboundLocalError, IndexError) as e:
                case['error'] = f'{type(e).__name__}: {e}'
            variants.append(case)
            n += 1

# img2img: set_timesteps(30), get_timesteps(30, 0.55), set_begin_index, add_noise at timesteps[:1], loop.
img2img = []
for name in REGULAR:
    for karras in ([False, True] if name in KARRAS else [False]):
        kw = overrides(name, karras, None, 'epsilon')
        s = make(name, kw)
        steps, strength = 30, 0.55
        s.set_timesteps(steps)
        init_timestep = min(int(steps * strength), steps)
        t_start = max(steps - init_timestep, 0)
        ts = s.timesteps[t_start * s.order:]
        if hasattr(s, 'set_begin_index'):
            s.set_begin_index(t_start * s.order)
        g = torch.Generator('cpu').manual_seed(SEED)
        x0 = init_image_latents()
        noise = torch.randn(SHAPE, generator=g)
        case = {'name': name, 'karras': karras, 'overrides': kw, 'steps': steps, 'strength': strength, 'id': n}
        try:
            noisy = s.add_noise(x0, noise, ts[:1].repeat(1))
            out, _ = loop(s, ts, noisy, g)
            tensors[f'{n}.timesteps'] = ts.double().numpy()
            tensors[f'{n}.noisy'] = noisy
            tensors[f'{n}.final'] = out
        except (ValueError, NotImplementedError, AttributeError, IndexError) as e:
            case['error'] = f'{type(e).__name__}: {e}'
        img2img.append(case)
        n += 1
tensors['init_latents'] = init_image_latents()

# DDIM with eta (stochastic), as the pipeline passes it through extra_step_kwargs.
eta_cases = []
for eta in (0.5, 1.0):
    s = make('DDIMScheduler', {'prediction_type': 'epsilon'})
    s.set_timesteps(30)
    g = torch.Generator('cpu').manual_seed(SEED)
    latents = torch.randn(SHAPE, generator=g) * s.init_noise_sigma
    out, _ = loop(s, s.timesteps, latents, g, eta=eta)
    tensors[f'{n}.final'] = out
    eta_cases.append({'eta': eta, 'id': n})
    n += 1

# Training noise schedules, bit for bit.
for label, cfg in [('sd15', SD15), ('linear', {}), ('cosine', {'beta_schedule': 'squaredcos_cap_v2'})]:
    s = diffusers.DDPMScheduler.from_config(cfg) if cfg else diffusers.DDPMScheduler()
    tensors[f'schedule.{label}.betas'] = s.betas
    tensors[f'schedule.{label}.alphas_cumprod'] = s.alphas_cumprod

# KarrasVe / ScoreSdeVe / DDIMInverse: their own step functions on fake inputs.
g = torch.Generator('cpu').manual_seed(7)
xa = torch.randn(SHAPE, generator=g)
xb = torch.randn(SHAPE, generator=g)
kv = KarrasVeScheduler()
kv.set_timesteps(10)
tensors['karras_ve.schedule'] = kv.schedule
gk = torch.Generator('cpu').manual_seed(11)
sigma = float(kv.schedule[3])
sample_hat, sigma_hat = kv.add_noise_to_input(xa, sigma, generator=gk)
out = kv.step(xb, sigma_hat, float(kv.schedule[2]), sample_hat)
corr = kv.step_correct(xb * 0.5, sigma_hat, float(kv.schedule[2]), sample_hat, out.prev_sample, out.derivative)
tensors['karras_ve.sample_hat'] = sample_hat
tensors['karras_ve.prev'] = out.prev_sample
tensors['karras_ve.derivative'] = out.derivative
tensors['karras_ve.corrected'] = corr.prev_sample
karras_ve_meta = {'sigma': sigma, 'sigma_hat': float(sigma_hat), 'sigma_prev': float(kv.schedule[2])}

sv = diffusers.ScoreSdeVeScheduler()
sv.set_timesteps(10)
sv.set_sigmas(10)
tensors['sde_ve.timesteps'] = sv.timesteps
tensors['sde_ve.sigmas'] = sv.sigmas
tensors['sde_ve.discrete_sigmas'] = sv.discrete_sigmas
gs = torch.Generator('cpu').manual_seed(13)
corr = sv.step_correct(xb, xa, generator=gs).prev_sample
pred = sv.step_pred(xb, sv.timesteps[3], corr, generator=gs)
tensors['sde_ve.corrected'] = corr
tensors['sde_ve.pred'] = pred.prev_sample
tensors['sde_ve.pred_mean'] = pred.prev_sample_mean
tensors['sde_ve.add_noise'] = sv.add_noise(xa, xb, torch.tensor([4]))

inv_cases = []
for pred_type in ('epsilon', 'v_prediction'):
    di = diffusers.DDIMInverseScheduler.from_config(SD15, prediction_type=pred_type)
    di.set_timesteps(30)
    latents = xa.clone()
    for t in di.timesteps:
        latents = di.step(fake_model(latents, t), t, latents).prev_sample
    tensors[f'{n}.timesteps'] = di.timesteps.double().numpy()
    tensors[f'{n}.final'] = latents
    inv_cases.append({'prediction_type': pred_type, 'id': n})
    n += 1
tensors['fake.xa'] = xa
tensors['fake.xb'] = xb

# Combinations diffusers rejects (ours must raise too).
REJECT = [
    ('DPMSolverMultistepScheduler', {'algorithm_type': 'dpmsolver', 'final_sigmas_type': 'zero'}, 30),
    ('DPMSolverMultistepScheduler', {'algorithm_type': 'sde-dpmsolver', 'final_sigmas_type': 'zero'}, 30),
    ('DPMSolverMultistepScheduler', {'algorithm_type': 'sde-dpmsolver', 'final_sigmas_type': 'sigma_min', 'solver_order': 3}, 30),
    ('DPMSolverSinglestepScheduler', {'algorithm_type': 'sde-dpmsolver'}, 30),
    ('DPMSolverMultistepScheduler', {'algorithm_type': 'bogus'}, 30),
    ('LCMScheduler', {}, 51),
    ('DDPMScheduler', {}, 1001),
    ('DDIMInverseScheduler', {'timestep_spacing': 'linspace'}, 30),
    ('EulerDiscreteScheduler', {'timestep_spacing': 'bogus'}, 30),
]
rejections = []
for name, kw, steps in REJECT:
    try:
        s = make(name, kw)
        s.set_timesteps(steps)
        g = torch.Generator('cpu').manual_seed(SEED)
        latents = torch.randn(SHAPE, generator=g) * s.init_noise_sigma
        loop(s, s.timesteps, latents, g)
        raise SystemExit(f'expected diffusers to reject {name} {kw}')
    except (ValueError, NotImplementedError, UnboundLocalError) as e:
        rejections.append({'name': name, 'overrides': kw, 'steps': steps, 'error': f'{type(e).__name__}: {e}'})

save_fixture('schedulers/trajectories', tensors, {
    'rejections': rejections, 'variants': variants,
    'diffusers': diffusers.__version__, 'torch': torch.__version__, 'sd15_config': SD15, 'shape': list(SHAPE),
    'seed': SEED, 'cases': cases, 'img2img': img2img, 'ddim_eta': eta_cases, 'ddim_inverse': inv_cases,
    'karras_ve': karras_ve_meta, 'karras_classes': sorted(KARRAS),
})
ok = sum(1 for c in cases if 'error' not in c)
print(f'variants: {len(variants)} ({sum(1 for v in variants if "error" in v)} rejected)')
for v in variants:
    if 'error' in v:
        print('  variant rejected:', v['name'], v['overrides'], v['error'][:100])
print(f'schedulers: {len(cases)} cases ({ok} ran, {len(cases) - ok} rejected by diffusers), {len(img2img)} img2img')
for c in cases:
    if 'error' in c:
        print('  rejected:', c['key'], c['error'][:120])
for c in img2img:
    if 'error' in c:
        print('  img2img rejected:', c['name'], c['error'][:120])
