// The precision the network graphs are built in: ENGINE_PRECISION, fp16 or fp32. fp16 means float16 weights and
// activations with float32 islands where diffusers' fp16 pipelines keep float32 (normalization statistics, the
// time projection, ToMe's merge, and the whole VAE when its config sets force_upcast). Graph inputs and outputs
// stay float32 whatever the precision, so callers feed and read the same tensors.
import type { FloatType } from './graph.ts';

export const PRECISIONS = ['fp16', 'fp32'] as const;
export type Precision = (typeof PRECISIONS)[number];

/**
 * ENGINE_PRECISION's value, or the provider's default: fp16 on GPU providers (cuda, tensorrt, webgpu), fp32 on cpu
 * (x86 CPUs have no fast float16 arithmetic; ONNX Runtime's CPU provider runs many fp16 ops through casts).
 * @throws Error naming the setting when the value is not fp16 or fp32.
 */
export function parsePrecision(value: string | undefined, provider: string): Precision {
  if (value === undefined || value === '') return provider === 'cpu' ? 'fp32' : 'fp16';
  const p = value.toLowerCase();
  if (!(PRECISIONS as readonly string[]).includes(p)) throw new Error(`ENGINE_PRECISION must be one of ${PRECISIONS.join(', ')} (got "${value}")`);
  return p as Precision;
}

/**
 * Experimental, for bench/gpu.sh --diagnose (not a setting): op families a float16 UNet can compute in float32 on top of
 * the usual islands, to find which float16 kernels of a provider lose precision. Each casts its activations, weights
 * and biases to float32 around the op and casts the result back to float16:
 * - attention: the attention core (QKᵀ, softmax, ·V: the MultiHeadAttention node), not its projections;
 * - linear: every MatMul of a linear layer (attention projections, feed-forward, time embedding, proj_in/out);
 * - conv: every Conv;
 * - norm: GroupNorm and LayerNorm as a whole (input, scale, bias and output float32, not just the statistics).
 */
export const FP32_ISLANDS = ['attention', 'linear', 'conv', 'norm'] as const;
export type Fp32Island = (typeof FP32_ISLANDS)[number];

/** The graph element type of a precision. */
export function floatTypeOf(p: Precision | undefined): FloatType {
  return p === 'fp16' ? 'float16' : 'float32';
}
