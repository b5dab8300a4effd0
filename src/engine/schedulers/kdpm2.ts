// KDPM2DiscreteScheduler and KDPM2AncestralDiscreteScheduler (k-diffusion's DPM-Solver-2 "dpm_2" and
// "dpm_2_ancestral"): each step evaluates the model at sigma and at the log-midpoint sigma_interpol, so the
// timestep table interleaves the two. The ancestral variant adds noise of size sigma_up after each pair.
import { BETA_DEFAULTS, f, lerpHalfF32, requireGenerator, roundHalfEven, sigmaToTF32 } from './common.ts';
import { SigmaScheduler } from './sigma-base.ts';
import type { SchedulerConfig, StepOptions } from './types.ts';

export const KDPM2_DEFAULTS = {
  ...BETA_DEFAULTS,
  beta_start: 0.00085,
  beta_end: 0.012,
  use_karras_sigmas: false as boolean | null,
  use_exponential_sigmas: false as boolean | null,
  use_beta_sigmas: false as boolean | null,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
};

/** [x0, x1, x1, ..., xn, xn, xn]: how both classes lay their per-sigma tables out per model call. */
function doubled(x: ArrayLike<number>): Float32Array {
  const out = [x[0]!];
  for (let i = 1; i < x.length; i++) out.push(x[i]!, x[i]!);
  out.push(x[x.length - 1]!);
  return Float32Array.from(out);
}

abstract class KDpm2Base extends SigmaScheduler {
  override readonly order = 2;
  protected interpolTable: Float32Array = new Float32Array(0);
  protected firstSample: Float32Array | null = null;

  constructor(config: SchedulerConfig) {
    super(config);
    if (config.use_exponential_sigmas || config.use_beta_sigmas) throw new Error('exponential/beta sigmas are not supported');
    if (config.prediction_type === 'sample') throw new Error('prediction_type not implemented yet: sample');
    this.setTimesteps(config.num_train_timesteps as number);
  }

  /** Float32 sigmas (with the final 0) and timesteps (float32, or rounded doubles with Karras). */
  protected schedule(n: number): { sigmas: Float32Array; timesteps: number[]; logSigmas: Float32Array } {
    let { timesteps, sigmas, logSigmas } = this.baseSchedule(n);
    if (this.config.use_karras_sigmas) {
      ({ sigmas, timesteps } = this.karras(sigmas, n, logSigmas));
      timesteps = timesteps.map(roundHalfEven);
    }
    return { sigmas: Float32Array.from([...sigmas, 0]), timesteps, logSigmas };
  }

  protected get inFirstOrder(): boolean {
    return this.firstSample === null;
  }
}

export class KDPM2DiscreteScheduler extends KDpm2Base {
  readonly name = 'KDPM2DiscreteScheduler' as const;

  setTimesteps(n: number): void {
    this.numInferenceSteps = n;
    const { sigmas, timesteps, logSigmas } = this.schedule(n);
    const m = sigmas.length;
    const logs = sigmas.map((s) => f(Math.log(s)));
    const interpol = sigmas.map((_, i) => f(Math.exp(lerpHalfF32(logs[i]!, logs[(i - 1 + m) % m]!))));
    this.sigmaTable = doubled(sigmas);
    this.interpolTable = doubled(interpol);
    const ti = Array.from(interpol, (s) => sigmaToTF32(s, logSigmas));
    const out = [timesteps[0]!];
    for (let k = 1; k < timesteps.length; k++) out.push(ti[k]!, timesteps[k]!);
    this.timesteps = this.config.use_karras_sigmas ? out : out.map(f);
    this.firstSample = null;
    this.resetIndex();
  }

  protected override inputSigma(index: number): number {
    return this.inFirstOrder ? this.sigmaTable[index]! : this.interpolTable[index]!;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const i = this.initStepIndex(timestep);
    const first = this.inFirstOrder;
    const sigma = first ? this.sigmaTable[i]! : this.sigmaTable[i - 1]!;
    const sigmaInterpol = first ? this.interpolTable[i + 1]! : this.interpolTable[i]!;
    const sigmaNext = first ? this.sigmaTable[i + 1]! : this.sigmaTable[i]!;
    const pred = this.predictOriginal(modelOutput, sample, first ? sigma : sigmaInterpol);
    let out: Float32Array;
    if (first) {
      const dt = f(sigmaInterpol - sigma);
      out = sample.map((x, k) => f(x + f(f(f(x - pred[k]!) / sigma) * dt)));
      this.firstSample = sample;
    } else {
      const dt = f(sigmaNext - sigma);
      const base = this.firstSample!;
      out = base.map((x, k) => f(x + f(f(f(sample[k]! - pred[k]!) / sigmaInterpol) * dt)));
      this.firstSample = null;
    }
    this.stepIndex = i + 1;
    return out;
  }
}

export class KDPM2AncestralDiscreteScheduler extends KDpm2Base {
  readonly name = 'KDPM2AncestralDiscreteScheduler' as const;
  private upTable: Float32Array = new Float32Array(0);
  private downTable: Float32Array = new Float32Array(0);

  setTimesteps(n: number): void {
    this.numInferenceSteps = n;
    const { sigmas, timesteps, logSigmas } = this.schedule(n);
    const m = sigmas.length;
    const up = new Float32Array(m);
    const down = new Float32Array(m);
    for (let i = 0; i < m; i++) {
      const s2 = f(sigmas[i]! * sigmas[i]!);
      const next = i + 1 < m ? sigmas[i + 1]! : 0;
      const n2 = f(next * next);
      up[i] = f(Math.sqrt(f(f(n2 * f(s2 - n2)) / s2)));
      down[i] = f(Math.sqrt(f(n2 - f(up[i]! * up[i]!))));
    }
    down[m - 1] = 0;
    const interpol = sigmas.map((s, i) => f(Math.exp(lerpHalfF32(f(Math.log(s)), f(Math.log(down[i]!))))));
    interpol[m - 1] = 0;
    interpol[m - 2] = 0;
    this.sigmaTable = doubled(sigmas);
    this.interpolTable = doubled(interpol);
    this.upTable = doubled(up);
    this.downTable = doubled(down);
    const ti = Array.from(interpol, (s) => sigmaToTF32(s, logSigmas));
    const out = [timesteps[0]!];
    for (let k = 1; k < timesteps.length; k++) out.push(ti[k - 1]!, timesteps[k]!);
    this.timesteps = this.config.use_karras_sigmas ? out : out.map(f);
    this.firstSample = null;
    this.resetIndex();
  }

  protected override inputSigma(index: number): number {
    return this.inFirstOrder ? this.sigmaTable[index]! : this.interpolTable[index - 1]!;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    const i = this.initStepIndex(timestep);
    const first = this.inFirstOrder;
    const j = first ? i : i - 1;
    const sigma = this.sigmaTable[j]!;
    const sigmaInterpol = this.interpolTable[j]!;
    const sigmaUp = this.upTable[j]!;
    const sigmaDown = this.downTable[(i - 1 + this.downTable.length) % this.downTable.length]!;
    const pred = this.predictOriginal(modelOutput, sample, first ? sigma : sigmaInterpol);
    let out: Float32Array;
    if (first) {
      const dt = f(sigmaInterpol - sigma);
      out = sample.map((x, k) => f(x + f(f(f(x - pred[k]!) / sigma) * dt)));
      this.firstSample = sample;
    } else {
      const dt = f(sigmaDown - sigma);
      const base = this.firstSample!;
      out = base.map((x, k) => f(x + f(f(f(sample[k]! - pred[k]!) / sigmaInterpol) * dt)));
      this.firstSample = null;
      const noise = requireGenerator(opts, this.name).randn([out.length]);
      out = out.map((x, k) => f(x + f(noise[k]! * sigmaUp)));
    }
    this.stepIndex = i + 1;
    return out;
  }
}
