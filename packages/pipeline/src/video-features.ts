import { tf, type FrameFeatures } from '@bvllm/core';
import { samplingOptionsSchema, type FeatureCache, type SamplingInput } from '@bvllm/vision-encoder';
import type { BvllmModel } from './bvllm-model.js';

export interface VideoFeatureOptions {
  /** Overrides of the model's inference sampling (1 fps by default, spec §3). */
  sampling?: SamplingInput;
  /** On-disk feature cache; a second call about the same video never re-decodes or re-encodes. */
  cache?: FeatureCache;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/**
 * Decodes, samples and encodes one video (or image, or frame folder) with the model's frozen tfjs tower, every
 * patch kept: the training and analysis path (`BvllmModel.visualPath`). Inference encodes through
 * `InferenceSession.encode`, in chunks and bounded memory.
 */
export async function videoFeatures(model: BvllmModel, path: string, options: VideoFeatureOptions = {}): Promise<FrameFeatures> {
  const sampling = samplingOptionsSchema.parse({ ...model.config.vision.sampling, ...options.sampling });
  const encodeOptions = { sampling, batchSize: model.config.vision.batchSize, onProgress: options.onProgress, signal: options.signal };
  if (options.cache) return (await options.cache.getOrCompute(path, model.vision, encodeOptions)).features;
  return model.vision.encodeVideo(path, encodeOptions);
}

export function disposeFeatures(features: FrameFeatures): void {
  tf.dispose([features.cls, features.patches]);
}
