// UniPCMultistepScheduler (Zhao et al. 2023): a multistep predictor (UniP) followed, on the next call, by a
// corrector (UniC) that reuses the new model output, B(h) variants bh1/bh2.
import { BETA_DEFAULTS, f } from './common.ts';
import { MultistepScheduler, sub } from './multistep-base.ts';
import type { SchedulerConfig, StepOptions } from './types.ts';

export const UNIPC_DEFAULTS = {
  ...BETA_DEFAULTS,
  solver_order: 2,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  predict_x0: true,
  solver_type: 'bh2',
  lower_order_final: true,
  disable_corrector: [] as number[],
  solver_p: null,
  use_karras_sigmas: false as boolean | null,
  use_exponential_sigmas: false as boolean | null,
  use_beta_sigmas: false as boolean | null,
  use_flow_sigmas: false as boolean | null,
  flow_shift: 1.0,
  timestep_spacing: 'linspace',
  steps_offset: 0,
  final_sigmas_type: 'zero',
  rescale_betas_zero_snr: false,
  use_dynamic_shifting: false,
  time_shift_type: 'exponential',
  sigma_min: null as number | null,
  sigma_max: null as number | null,
  shift_terminal: null as number | null,
};

/** Solves the small dense system A x = b (Gaussian elimination with partial pivoting, doubles). */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    for (let r = c + 1; r < n; r++) {
      const k = M[r]![c]! / M[c]![c]!;
      for (let j = c; j <= n; j++) M[r]![j]! -= k * M[c]![j]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r]![n]!;
    for (let j = r + 1; j < n; j++) s -= M[r]![j]! * x[j]!;
    x[r] = s / M[r]![r]!;
  }
  return x;
}

export class UniPCMultistepScheduler extends MultistepScheduler {
  readonly name = 'UniPCMultistepScheduler' as const;
  private lastSample: Float32Array | null = null;
  private thisOrder = 1;

  constructor(config: SchedulerConfig) {
    const c = { ...config };
    if (c.solver_type !== 'bh1' && c.solver_type !== 'bh2') {
      if (['midpoint', 'heun', 'logrho'].includes(c.solver_type as string)) c.solver_type = 'bh2';
      else throw new Error(`${String(c.solver_type)} is not implemented for UniPCMultistepScheduler`);
    }
    if (c.solver_p) throw new Error('solver_p is not supported');
    if (c.shift_terminal) throw new Error('shift_terminal is not supported');
    super(c);
  }

  setTimesteps(n: number): void {
    this.buildSchedule(n, this.spacedTimesteps(n), 'karras_min');
    this.resetHistory();
    this.lastSample = null;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    this.requireTimesteps();
    const i = this.initStepIndex(timestep);
    const disabled = (this.config.disable_corrector as number[]) ?? [];
    const useCorrector = i > 0 && !disabled.includes(i - 1) && this.lastSample !== null;
    const predictX0 = Boolean(this.config.predict_x0);
    const converted = predictX0 ? this.toX0(modelOutput, sample, i, opts) : this.toEps(modelOutput, sample, i, opts);
    let x = sample;
    if (useCorrector) x = this.corrector(converted, this.lastSample!, i, this.thisOrder);
    const order = this.config.solver_order as number;
    this.pushModelOutput(converted);
    const thisOrder = this.config.lower_order_final ? Math.min(order, this.timesteps.length - i) : order;
    this.thisOrder = Math.min(thisOrder, this.lowerOrderNums + 1);
    this.lastSample = x;
    const prev = this.predictor(x, i, this.thisOrder);
    this.warmUp();
    this.stepIndex = i + 1;
    return prev;
  }

  /** h, the phi-series right-hand side b, and the r_k of the previous points (float32 scalars). */
  private coefficients(sigT: number, sigS0: number, prevSigmas: number[], order: number) {
    const t = this.alphaSigma(sigT);
    const s0 = this.alphaSigma(sigS0);
    const h = f(t.lambda - s0.lambda);
    const rks = prevSigmas.map((s) => f(f(this.alphaSigma(s).lambda - s0.lambda) / h));
    rks.push(1);
    const predictX0 = Boolean(this.config.predict_x0);
    const hh = predictX0 ? -h : h;
    const hPhi1 = f(Math.expm1(hh));
    const Bh = this.config.solver_type === 'bh1' ? hh : f(Math.expm1(hh));
    let hPhiK = f(f(hPhi1 / hh) - 1);
    let factorial = 1;
    const R: number[][] = [];
    const b: number[] = [];
    for (let k = 1; k <= order; k++) {
      R.push(rks.map((r) => f(r ** (k - 1))));
      b.push(f(f(hPhiK * factorial) / Bh));
      factorial *= k + 1;
      hPhiK = f(f(hPhiK / hh) - f(1 / factorial));
    }
    return { t, s0, hPhi1, Bh, rks, R, b, predictX0 };
  }

  /** x_t_ = sigma_t/sigma_s0 x - alpha_t hphi1 m0 (data prediction) or its noise-prediction twin. */
  private base(c: ReturnType<UniPCMultistepScheduler['coefficients']>, x: Float32Array, m0: Float32Array): { xt: Float32Array; k: number } {
    const { t, s0, hPhi1, Bh, predictX0 } = c;
    const cx = predictX0 ? f(t.sigma / s0.sigma) : f(t.alpha / s0.alpha);
    const cm = predictX0 ? f(t.alpha * hPhi1) : f(t.sigma * hPhi1);
    const xt = x.map((v, k) => f(f(cx * v) - f(cm * m0[k]!)));
    return { xt, k: predictX0 ? f(t.alpha * Bh) : f(t.sigma * Bh) };
  }

  private predictor(x: Float32Array, i: number, order: number): Float32Array {
    const outs = this.modelOutputs;
    const n = outs.length;
    const m0 = outs[n - 1]!;
    const prevSigmas = Array.from({ length: order - 1 }, (_, j) => this.sigmaTable[i - (j + 1)]!);
    const c = this.coefficients(this.sigmaTable[i + 1]!, this.sigmaTable[i]!, prevSigmas, order);
    const D1s = prevSigmas.map((_, j) => sub(outs[n - (j + 2)]!, m0).map((v) => f(v / c.rks[j]!)));
    const { xt, k } = this.base(c, x, m0);
    if (D1s.length === 0) return xt;
    const rhos = order === 2 ? [0.5] : solve(c.R.slice(0, -1).map((r) => r.slice(0, -1)), c.b.slice(0, -1)).map(f);
    const res = weightedSum(rhos, D1s);
    return xt.map((v, j) => f(v - f(k * res[j]!)));
  }

  private corrector(modelT: Float32Array, last: Float32Array, i: number, order: number): Float32Array {
    const outs = this.modelOutputs;
    const n = outs.length;
    const m0 = outs[n - 1]!;
    const prevSigmas = Array.from({ length: order - 1 }, (_, j) => this.sigmaTable[i - (j + 2)]!);
    const c = this.coefficients(this.sigmaTable[i]!, this.sigmaTable[i - 1]!, prevSigmas, order);
    const D1s = prevSigmas.map((_, j) => sub(outs[n - (j + 2)]!, m0).map((v) => f(v / c.rks[j]!)));
    const rhos = order === 1 ? [0.5] : solve(c.R, c.b).map(f);
    const { xt, k } = this.base(c, last, m0);
    const corr = D1s.length ? weightedSum(rhos.slice(0, -1), D1s) : null;
    const rLast = rhos[rhos.length - 1]!;
    return xt.map((v, j) => {
      const d1t = f(modelT[j]! - m0[j]!);
      const inner = f((corr ? corr[j]! : 0) + f(rLast * d1t));
      return f(v - f(k * inner));
    });
  }
}

/** einsum("k,bk...->b...", w, D): sum_k w_k D_k in float32. */
function weightedSum(w: number[], D: Float32Array[]): Float32Array {
  const out = D[0]!.map((v) => f(w[0]! * v));
  for (let k = 1; k < D.length; k++) for (let j = 0; j < out.length; j++) out[j] = f(out[j]! + f(w[k]! * D[k]![j]!));
  return out;
}
