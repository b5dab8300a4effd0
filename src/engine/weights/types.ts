// What every network builder reads weights through: names are diffusers module paths
// (e.g. "down_blocks.0.attentions.0.proj_in.weight"), whatever format the file on disk uses.

export type WeightDType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

export interface TensorInfo {
  dtype: WeightDType;
  shape: number[];
}

export interface RawTensor extends TensorInfo {
  bytes: Uint8Array;
}

export interface WeightSource {
  /** Every tensor name this source holds. */
  keys(): string[];
  info(name: string): TensorInfo | undefined;
  /** Reads one tensor, upcast to float32 (fp16 / bf16 are converted on the CPU). */
  readF32(name: string): Promise<Float32Array>;
  /** Reads one tensor's stored bytes unconverted (little-endian, C order), e.g. to keep fp16 weights fp16. */
  readRaw?(name: string): Promise<RawTensor>;
  /** A stable fingerprint of the content (for the compiled-model cache key). */
  fingerprint(): string;
}
