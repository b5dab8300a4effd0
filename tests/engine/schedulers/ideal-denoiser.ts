// Test helper: the exact noise prediction for data that is a single point x*, on SD's VP schedule.
// In VE terms x = x* + sigma * eps, so eps = (x_ve - x*) / sigma with x_ve = x_in * sqrt(sigma^2 + 1) and
// sigma(t) the log-linear interpolation of the training sigmas (the inverse of sigmaToT).
import { alphasCumprod, resolveConfig, trainBetas, trainSigmas } from '../../../src/engine/schedulers/common.ts';
import { DDPM_DEFAULTS } from '../../../src/engine/schedulers/ddpm.ts';

/** sigma(t): the log-linear interpolation of the config's training sigmas (the inverse of sigmaToT). */
function sigmaOfTimestep(config: Record<string, unknown>): (t: number) => number {
  const sigmas = trainSigmas(alphasCumprod(trainBetas(resolveConfig(DDPM_DEFAULTS, config))));
  return (t) => {
    const lo = Math.min(Math.max(Math.floor(t), 0), sigmas.length - 2);
    const w = Math.min(Math.max(t - lo, 0), 1);
    return Math.exp((1 - w) * Math.log(sigmas[lo]!) + w * Math.log(sigmas[lo + 1]!));
  };
}

export function idealPointDenoiser(config: Record<string, unknown>, target: Float32Array) {
  const sigmaOf = sigmaOfTimestep(config);
  return (xIn: Float32Array, t: number): Float32Array => {
    const s = sigmaOf(t);
    const scale = Math.sqrt(s * s + 1);
    return xIn.map((x, i) => (x * scale - target[i]!) / s);
  };
}

/**
 * The exact noise prediction for data drawn i.i.d. from N(mu, s^2) per element: with x_ve = x0 + sigma eps,
 * E[eps | x_ve] = sigma (x_ve - mu) / (s^2 + sigma^2). A correct sampler turns noise into N(mu, s^2).
 */
export function idealGaussianDenoiser(config: Record<string, unknown>, mu: number, s: number) {
  const sigmaOf = sigmaOfTimestep(config);
  return (xIn: Float32Array, t: number): Float32Array => {
    const sg = sigmaOf(t);
    const scale = Math.sqrt(sg * sg + 1);
    return xIn.map((x) => (sg * (x * scale - mu)) / (s * s + sg * sg));
  };
}

export function meanStd(x: ArrayLike<number>): { mean: number; std: number } {
  let m = 0;
  for (let i = 0; i < x.length; i++) m += x[i]!;
  m /= x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i]! - m) ** 2;
  return { mean: m, std: Math.sqrt(v / x.length) };
}
