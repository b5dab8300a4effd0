// LMSDiscreteScheduler: linear multistep over the last `order` (4) derivatives, with coefficients the
// integrals of the Lagrange basis polynomials between consecutive sigmas.
import { BETA_DEFAULTS, f } from './common.ts';
import { SigmaScheduler } from './sigma-base.ts';
import type { SchedulerConfig } from './types.ts';

export const LMS_DEFAULTS = {
  ...BETA_DEFAULTS,
  use_karras_sigmas: false as boolean | null,
  use_exponential_sigmas: false as boolean | null,
  use_beta_sigmas: false as boolean | null,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
};

// 5-point Gauss-Legendre nodes/weights on [-1, 1]: exact for the degree <= 3 integrands here, like
// diffusers' scipy.integrate.quad (which converges to the exact integral for these polynomials).
const GL_X = [0, -0.5384693101056831, 0.5384693101056831, -0.906179845938664, 0.906179845938664];
const GL_W = [0.5688888888888889, 0.47862867049936647, 0.47862867049936647, 0.23692688505618908, 0.23692688505618908];

function integrate(fn: (x: number) => number, a: number, b: number): number {
  const half = (b - a) / 2;
  const mid = (a + b) / 2;
  let s = 0;
  for (let i = 0; i < GL_X.length; i++) s += GL_W[i]! * fn(mid + half * GL_X[i]!);
  return s * half;
}

export class LMSDiscreteScheduler extends SigmaScheduler {
  readonly name = 'LMSDiscreteScheduler' as const;
  private derivatives: Float32Array[] = [];

  constructor(config: SchedulerConfig) {
    super(config);
    if (config.use_exponential_sigmas || config.use_beta_sigmas) throw new Error('exponential/beta sigmas are not supported');
    this.sigmaTable = this.trainingSigmaTable();
  }

  setTimesteps(n: number): void {
    this.numInferenceSteps = n;
    const { timesteps, sigmas } = this.sigmaSchedule(n);
    this.sigmaTable = Float32Array.from([...sigmas, 0]);
    this.timesteps = timesteps.map(f);
    this.derivatives = [];
    this.resetIndex();
  }

  private lmsCoefficient(order: number, t: number, current: number): number {
    const s = this.sigmaTable;
    const basis = (tau: number) => {
      let prod = 1;
      for (let k = 0; k < order; k++) {
        if (k === current) continue;
        prod *= (tau - s[t - k]!) / (s[t - current]! - s[t - k]!);
      }
      return prod;
    };
    return integrate(basis, s[t]!, s[t + 1]!);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const i = this.initStepIndex(timestep);
    const sigma = this.sigmaTable[i]!;
    const pred = this.predictOriginal(modelOutput, sample, sigma);
    this.derivatives.push(sample.map((x, k) => f(f(x - pred[k]!) / sigma)));
    const maxOrder = 4;
    if (this.derivatives.length > maxOrder) this.derivatives.shift();
    const order = Math.min(i + 1, maxOrder);
    const coeffs = Array.from({ length: order }, (_, c) => f(this.lmsCoefficient(order, i, c)));
    const newestFirst = [...this.derivatives].reverse();
    const sum = new Float32Array(sample.length);
    // zip(coeffs, reversed(derivatives)): after img2img's late start fewer derivatives than `order` exist.
    for (let c = 0; c < Math.min(order, newestFirst.length); c++) {
      const d = newestFirst[c]!;
      for (let k = 0; k < sum.length; k++) sum[k] = f(sum[k]! + f(coeffs[c]! * d[k]!));
    }
    this.stepIndex = i + 1;
    return sample.map((x, k) => f(x + sum[k]!));
  }
}
