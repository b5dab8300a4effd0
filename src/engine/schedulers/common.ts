// Pieces shared by the scheduler families: from_config resolution, the training noise schedule (bit-exact
// with torch's float32 linspace/cumprod), numpy-style spacing/interp helpers, and Karras sigmas.
// Values diffusers keeps in float32 tensors are rounded with fround; numpy float64 math stays in doubles.
import type { TorchGenerator } from '../random/torch-generator.ts';
import type { SchedulerConfig, StepOptions } from './types.ts';

export const f = Math.fround;

/** from_config: every key of the class defaults, taken from overrides, else the given config, else default. */
export function resolveConfig<T extends SchedulerConfig>(defaults: T, given: SchedulerConfig, overrides: SchedulerConfig = {}): T {
  const out: SchedulerConfig = {};
  for (const key of Object.keys(defaults)) {
    if (key in overrides && overrides[key] !== undefined) out[key] = overrides[key];
    else if (key in given && given[key] !== undefined) out[key] = given[key];
    else out[key] = defaults[key];
  }
  return out as T;
}

/** The base keys nearly every diffusers scheduler has, with the most common defaults. */
export const BETA_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear' as string,
  trained_betas: null as number[] | null,
};

/** torch.linspace(start, end, n, dtype=float32): float32 step, start + step*i fused, mirrored past halfway. */
export function torchLinspaceF32(start: number, end: number, n: number): Float32Array {
  const out = new Float32Array(n);
  if (n === 1) {
    out[0] = start;
    return out;
  }
  const s = f(start);
  const e = f(end);
  const step = f(f(e - s) / (n - 1));
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? f(s + step * i) : f(e - step * (n - i - 1));
  return out;
}

/** Cosine schedule (squaredcos_cap_v2), in doubles then float32 like betas_for_alpha_bar. */
function cosineBetas(n: number, maxBeta = 0.999): Float32Array {
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), maxBeta);
  return out;
}

export function trainBetas(cfg: SchedulerConfig): Float32Array {
  const n = cfg.num_train_timesteps as number;
  const trained = cfg.trained_betas as number[] | null | undefined;
  if (trained) return Float32Array.from(trained);
  const start = cfg.beta_start as number;
  const end = cfg.beta_end as number;
  switch (cfg.beta_schedule) {
    case 'linear':
      return torchLinspaceF32(start, end, n);
    case 'scaled_linear':
      return torchLinspaceF32(Math.sqrt(start), Math.sqrt(end), n).map((b) => f(b * b));
    case 'squaredcos_cap_v2':
      return cosineBetas(n);
    default:
      throw new Error(`beta_schedule ${String(cfg.beta_schedule)} is not supported`);
  }
}

/** diffusers' rescale_zero_terminal_snr (float32 tensor math). */
export function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const n = betas.length;
  const sqrtAc = new Float32Array(n);
  let acc = 1;
  for (let i = 0; i < n; i++) {
    acc *= f(1 - betas[i]!);
    sqrtAc[i] = f(Math.sqrt(f(acc)));
  }
  const first = sqrtAc[0]!;
  const last = sqrtAc[n - 1]!;
  for (let i = 0; i < n; i++) sqrtAc[i] = f(f(f(sqrtAc[i]! - last) * first) / f(first - last));
  const ac = sqrtAc.map((v) => f(v * v));
  const out = new Float32Array(n);
  out[0] = f(1 - ac[0]!);
  for (let i = 1; i < n; i++) out[i] = f(1 - f(ac[i]! / ac[i - 1]!));
  return out;
}

/** torch.cumprod(1 - betas) on float32: torch accumulates in double and stores float32. */
export function alphasCumprod(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc *= f(1 - betas[i]!);
    out[i] = acc;
  }
  return out;
}

/** ((1 - a) / a) ** 0.5 on the float32 tensor. */
export function trainSigmas(ac: Float32Array): Float32Array {
  return ac.map((a) => f(Math.sqrt(f(f(1 - a) / a))));
}

/** np.log of a float32 array (float32 result). */
export function logF32Array(a: Float32Array): Float32Array {
  return a.map((v) => f(Math.log(v)));
}

/** numpy's round (half to even). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** np.linspace(start, stop, n) in doubles. */
export function npLinspace(start: number, stop: number, n: number): number[] {
  if (n <= 0) return [];
  if (n === 1) return [start];
  const step = (stop - start) / (n - 1);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(i * step + start);
  out[n - 1] = stop;
  return out;
}

/** np.arange(start, stop, step) in doubles. */
export function npArange(start: number, stop: number, step: number): number[] {
  const len = Math.max(Math.ceil((stop - start) / step), 0);
  const out: number[] = [];
  for (let i = 0; i < len; i++) out.push(start + i * step);
  return out;
}

export type TimestepSpacing = 'linspace' | 'leading' | 'trailing';

/**
 * The three timestep spacings, descending, before any dtype cast (doubles). `roundLinspace` rounds the
 * linspace variant (the alpha-based schedulers do; the sigma-based ones keep fractional timesteps).
 */
export function spacedTimesteps(cfg: SchedulerConfig, n: number, roundLinspace: boolean): number[] {
  const T = cfg.num_train_timesteps as number;
  switch (cfg.timestep_spacing as TimestepSpacing) {
    case 'linspace': {
      const ts = npLinspace(0, T - 1, n).reverse();
      return roundLinspace ? ts.map(roundHalfEven) : ts;
    }
    case 'leading': {
      const ratio = Math.floor(T / n);
      const offset = (cfg.steps_offset as number) ?? 0;
      return npArange(0, n, 1).map((i) => roundHalfEven(i * ratio) + offset).reverse();
    }
    case 'trailing': {
      const ratio = T / n;
      return npArange(T, 0, -ratio).map((v) => roundHalfEven(v) - 1);
    }
    default:
      throw new Error(`${String(cfg.timestep_spacing)} is not supported. Please make sure to choose one of 'linspace', 'leading' or 'trailing'.`);
  }
}

/** np.interp(x, arange(len(fp)), fp). */
export function interpIndex(x: number, fp: ArrayLike<number>): number {
  const last = fp.length - 1;
  if (x <= 0) return fp[0]!;
  if (x >= last) return fp[last]!;
  const j = Math.floor(x);
  if (x === j) return fp[j]!;
  const slope = (fp[j + 1]! - fp[j]!) / 1;
  return slope * (x - j) + fp[j]!;
}

/** Karras et al. (2022) rho=7 sigmas between the ends of in_sigmas (or configured sigma_min/max), doubles. */
export function karrasSigmas(inSigmas: ArrayLike<number>, n: number, sigmaMin?: number | null, sigmaMax?: number | null): number[] {
  const lo = sigmaMin ?? inSigmas[inSigmas.length - 1]!;
  const hi = sigmaMax ?? inSigmas[0]!;
  const rho = 7;
  const minInv = lo ** (1 / rho);
  const maxInv = hi ** (1 / rho);
  return npLinspace(0, 1, n).map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/** diffusers' _sigma_to_t: the fractional training timestep of a sigma, by log-linear interpolation. */
export function sigmaToT(sigma: number, logSigmas: ArrayLike<number>): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  const n = logSigmas.length;
  // low_idx = (number of log_sigmas <= log_sigma) - 1, clipped to n - 2 (argmax of the cumsum)
  let count = 0;
  for (let i = 0; i < n; i++) if (logSigma - logSigmas[i]! >= 0) count++;
  const lowIdx = Math.min(Math.max(count - 1, 0), n - 2);
  const low = logSigmas[lowIdx]!;
  const high = logSigmas[lowIdx + 1]!;
  let w = (low - logSigma) / (low - high);
  w = Math.min(Math.max(w, 0), 1);
  return (1 - w) * lowIdx + w * (lowIdx + 1);
}

/** diffusers' index_for_timestep: the first match, or the second when the timestep repeats. */
export function indexForTimestep(timesteps: ArrayLike<number>, t: number): number {
  const hits: number[] = [];
  for (let i = 0; i < timesteps.length; i++) if (timesteps[i] === t) hits.push(i);
  if (hits.length === 0) throw new Error(`timestep ${t} is not in the schedule`);
  return hits.length > 1 ? hits[1]! : hits[0]!;
}


/** _sigma_to_t as diffusers runs it on float32 tensors (KDPM2's interpolated sigmas): float32 arithmetic. */
export function sigmaToTF32(sigma: number, logSigmas: Float32Array): number {
  const logSigma = f(Math.log(f(Math.max(sigma, 1e-10))));
  if (Number.isNaN(sigma)) return NaN;
  const n = logSigmas.length;
  let count = 0;
  for (let i = 0; i < n; i++) if (f(logSigma - logSigmas[i]!) >= 0) count++;
  const lowIdx = Math.min(Math.max(count - 1, 0), n - 2);
  const low = logSigmas[lowIdx]!;
  const high = logSigmas[lowIdx + 1]!;
  let w = f(f(low - logSigma) / f(low - high));
  w = Math.min(Math.max(w, 0), 1);
  return f(f(f(1 - w) * lowIdx) + f(w * (lowIdx + 1)));
}

/** torch.lerp(a, b, 0.5) on float32 (the weight >= 0.5 branch: b - (b - a) * 0.5). */
export function lerpHalfF32(a: number, b: number): number {
  return f(b - f(f(b - a) * 0.5));
}

/**
 * Dynamic thresholding (Imagen; diffusers' _threshold_sample): per batch item, s = quantile(|x|, ratio)
 * clamped to [1, maxValue]; x is clamped to [-s, s] and divided by s. float32 like torch.quantile.
 */
export function thresholdSample(x: Float32Array, batch: number, ratio: number, maxValue: number): Float32Array {
  const per = x.length / batch;
  if (!Number.isInteger(per)) throw new Error(`sample of ${x.length} values does not split into ${batch} items`);
  const out = new Float32Array(x.length);
  for (let b = 0; b < batch; b++) {
    const row = x.subarray(b * per, (b + 1) * per);
    const sorted = Float32Array.from(row, Math.abs).sort();
    const rank = f(f(ratio) * (per - 1));
    const lo = Math.floor(rank);
    const hi = Math.ceil(rank);
    const w = f(rank - lo);
    const a = sorted[lo]!;
    const c = sorted[hi]!;
    const q = w < 0.5 ? f(a + f(w * f(c - a))) : f(c - f(f(c - a) * f(1 - w)));
    const s = Math.min(Math.max(q, 1), maxValue);
    for (let i = 0; i < per; i++) out[b * per + i] = f(Math.min(Math.max(row[i]!, -s), s) / s);
  }
  return out;
}

export function clampArray(x: Float32Array, range: number): Float32Array {
  return x.map((v) => Math.min(Math.max(v, -range), range));
}

/** The request's generator; stochastic steps cannot run without one (diffusers would use global RNG). */
export function requireGenerator(opts: StepOptions, cls: string): TorchGenerator {
  if (!opts.generator) throw new Error(`${cls}.step needs a generator (it draws noise)`);
  return opts.generator;
}
