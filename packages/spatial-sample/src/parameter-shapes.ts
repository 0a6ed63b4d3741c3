/**
 * The spatial-sampling stage's parameters by checkpoint key, from its config and Cv alone (no tfjs variables):
 * what `bvllm convert` plans and validates a checkpoint against (issue #18).
 */
import { qformerParameterShapes } from '@bvllm/core';
import type { SpatialSampleConfig } from './config.js';

/**
 * `qformer`: `vlm_att_query_spatial` [1, R, Cq] and the spatial Q-Former (`vlm_att_encoder_spatial.*`,
 * cross-attending to Cv). The pooling baselines hold no weights.
 */
export function spatialSampleParameterShapes(config: SpatialSampleConfig, visionWidth: number): Map<string, number[]> {
  if (config.kind !== 'qformer') return new Map();
  const q = config.qformer;
  return new Map([
    ['vlm_att_query_spatial', [1, config.numQueries, q.hiddenSize]],
    ...qformerParameterShapes('vlm_att_encoder_spatial.', { ...q, encoderHiddenSize: visionWidth }),
  ]);
}

/** The width of the stage's tokens, the projector's input: Cq for the Q-Former, Cv for the baselines. */
export function spatialSampleOutDim(config: SpatialSampleConfig, visionWidth: number): number {
  return config.kind === 'qformer' ? config.qformer.hiddenSize : visionWidth;
}
