/**
 * Named tensors read one at a time (issue #18): what the streamed ONNX exporters and `bvllm convert` read, so no
 * module ever needs a whole checkpoint (or a tfjs copy of it) in memory. A safetensors folder, a key-renamed view
 * of one, a LoRA-merged view, seeded random fills and a tfjs ParameterStore are all WeightSources.
 */
import type { SafetensorsDtype } from './safetensors/dtypes.js';

/** The stored type and shape of one tensor. */
export interface WeightInfo {
  dtype: SafetensorsDtype;
  shape: number[];
}

export interface WeightSource {
  /** Every key this source can read. */
  keys(): string[];
  has(key: string): boolean;
  /** Stored dtype and shape; throws a typed error naming the key when it is absent. */
  info(key: string): WeightInfo;
  /** One tensor's values as float32, freshly allocated, row-major in `info(key).shape`. */
  read(key: string): Float32Array;
  /** Where the key comes from, for conversion tables and errors (a file, "random", "lora-merged(…)"). */
  origin(key: string): string;
  close(): void;
}
