// KDPM2DiscreteScheduler and KDPM2AncestralDiscreteScheduler (k-diffusion's DPM-Solver-2 "dpm_2" and
// "dpm_2_ancestral"): each step evaluates the model at sigma and at the log-midpoint sigma_interpol, so the
// timestep table interleaves the two. The ancestral variant adds noise of size sigma_up after each pair.
import { BETA_DEFAULTS, f, lerpHalfF32, requireGenerator, roundHalfEven, sigmaToTF32 } from './common.ts';
import { SigmaScheduler, ancestralStep, eulerStep, interleaveMiddle } from './sigma-base.ts';
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
    const { timesteps, sigmas, logSigmas } = this.sigmaSchedule(n);
    return {
      sigmas: Float32Array.from([...sigmas, 0]),
      timesteps: this.config.use_karras_sigmas ? timesteps.map(roundHalfEven) : timesteps,
      logSigmas,
    };
  }

  /**
   * Installs the per-call tables (sigmas and sigma_interpol, laid out by interleaveMiddle) and the
   * interleaved timesteps [t0, ti, t1, ti, t2, ...], where the interpolated timestep before t_k is that of
   * interpol[k - lag] (lag 0 plain, 1 ancestral).
   */
  protected install(sigmas: Float32Array, interpol: Float32Array, timesteps: number[], logSigmas: Float32Array, lag: 0 | 1): void {
    this.sigmaTable = interleaveMiddle(sigmas, true);
    this.interpolTable = interleaveMiddle(interpol, true);
    const ti = Array.from(interpol, (s) => sigmaToTF32(s, logSigmas));
    const out = [timesteps[0]!];
    for (let k = 1; k < timesteps.length; k++) out.push(ti[k - lag]!, timesteps[k]!);
    this.timesteps = this.config.use_karras_sigmas ? out : out.map(f);
    this.firstSample = null;
    this.resetIndex();
  }

  protected get inFirstOrder(): boolean {
    return this.firstSample === null;
  }

  /**
   * One model call of a DPM-Solver-2 step. The first is an Euler step from sigma to sigma_interpol (and
   * keeps the sample); the second goes from that kept sample to sigmaEnd with the derivative at sigma_interpol.
   */
  protected dpm2Step(modelOutput: Float32Array, sample: Float32Array, sigma: number, sigmaInterpol: number, sigmaEnd: number): Float32Array {
    const first = this.inFirstOrder;
    const pred = this.predictOriginal(modelOutput, sample, first ? sigma : sigmaInterpol);
    if (first) {
      this.firstSample = sample;
      return eulerStep(sample, sample, pred, sigma, f(sigmaInterpol - sigma));
    }
    const base = this.firstSample!;
    this.firstSample = null;
    return eulerStep(base, sample, pred, sigmaInterpol, f(sigmaEnd - sigma));
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
    this.install(sigmas, interpol, timesteps, logSigmas, 0);
  }

  protected override inputSigma(index: number): number {
    return this.inFirstOrder ? this.sigmaTable[index]! : this.interpolTable[index]!;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const i = this.initStepIndex(timestep);
    const out = this.inFirstOrder
      ? this.dpm2Step(modelOutput, sample, this.sigmaTable[i]!, this.interpolTable[i + 1]!, this.sigmaTable[i + 1]!)
      : this.dpm2Step(modelOutput, sample, this.sigmaTable[i - 1]!, this.interpolTable[i]!, this.sigmaTable[i]!);
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
      const split = ancestralStep(sigmas[i]!, i + 1 < m ? sigmas[i + 1]! : 0);
      up[i] = split.up;
      down[i] = split.down;
    }
    down[m - 1] = 0;
    const interpol = sigmas.map((s, i) => f(Math.exp(lerpHalfF32(f(Math.log(s)), f(Math.log(down[i]!))))));
    interpol[m - 1] = 0;
    interpol[m - 2] = 0;
    this.upTable = interleaveMiddle(up, true);
    this.downTable = interleaveMiddle(down, true);
    this.install(sigmas, interpol, timesteps, logSigmas, 1);
  }

  protected override inputSigma(index: number): number {
    return this.inFirstOrder ? this.sigmaTable[index]! : this.interpolTable[index - 1]!;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, opts: StepOptions = {}): Float32Array {
    const i = this.initStepIndex(timestep);
    const first = this.inFirstOrder;
    const j = first ? i : i - 1;
    const sigmaDown = this.downTable[(i - 1 + this.downTable.length) % this.downTable.length]!;
    let out = this.dpm2Step(modelOutput, sample, this.sigmaTable[j]!, this.interpolTable[j]!, sigmaDown);
    if (!first) {
      const sigmaUp = this.upTable[j]!;
      const noise = requireGenerator(opts, this.name).randn([out.length]);
      out = out.map((x, k) => f(x + f(noise[k]! * sigmaUp)));
    }
    this.stepIndex = i + 1;
    return out;
  }
}
