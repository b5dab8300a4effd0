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
 * Op families a float16 graph can compute in float32 on top of the usual islands. Each casts its activations, weights
 * and biases to float32 around the op and casts the result back to float16:
 * - attention: the attention core (QKᵀ, softmax, ·V: the MultiHeadAttention node), not its projections;
 * - linear: every MatMul of a linear layer (attention projections, feed-forward, time embedding, proj_in/out);
 * - conv: every Conv of the shared conv helper (layers.ts conv, LoRA's conv branch included);
 * - norm: GroupNorm and LayerNorm as a whole (input, scale, bias and output float32, not just the statistics).
 * `conv` is a product default on WebGPU (defaultFp32Islands); all four are tried by bench/gpu.sh --diagnose.
 */
export const FP32_ISLANDS = ['attention', 'linear', 'conv', 'norm'] as const;
export type Fp32Island = (typeof FP32_ISLANDS)[number];

/**
 * The extra float32 islands the engine builds a network's graphs with on a provider: `conv` for fp16 on webgpu, none
 * elsewhere. Measured with bench/gpu.sh --diagnose (NVIDIA H200, ONNX Runtime 1.30's WebGPU EP over Vulkan; SD 1.5
 * UNet, random weights, 512×512, CFG batch 2): the fp16 UNet's output is 2.08e-2 relative L2 from diffusers fp32
 * (diffusers' own fp16: 1.67e-3); with every Conv in float32 it is 2.49e-3 at 0.1328 s/step against 0.1242 (+7%),
 * while float32 linear layers (2.06e-2) or attention (2.08e-2) change nothing: the WebGPU EP's float16 Conv2dMM
 * kernel accumulates in float16. The other providers' float16 convolutions accumulate in float32, so their graphs
 * are unchanged: the CPU provider runs them as float32 kernels between casts (tests/engine/models/fp16.test.ts: the
 * tiny ControlNet's and float16 VAE's fp16-vs-fp32 error is 4.9e-4 to 8.4e-4 without the island, 7.6e-4 to 1.1e-3
 * with it, whose explicit casts round each Conv's output to float16 where ONNX Runtime's CPU casts may not), and
 * CUDA / TensorRT use cuDNN /
 * TensorRT fp16 convolutions with float32 accumulation, as torch's fp16 conv in diffusers does (not measured here:
 * the GPU machine has no CUDA provider libraries).
 * @param provider the execution provider (session.ts PROVIDERS); @param precision the graphs' precision.
 */
export function defaultFp32Islands(provider: string, precision: Precision | undefined): Fp32Island[] {
  return provider === 'webgpu' && precision === 'fp16' ? ['conv'] : [];
}

/** The graph element type of a precision. */
export function floatTypeOf(p: Precision | undefined): FloatType {
  return p === 'fp16' ? 'float16' : 'float32';
}
