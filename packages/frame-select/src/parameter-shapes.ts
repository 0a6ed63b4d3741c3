/**
 * The frame-selection stage's parameters by checkpoint key, from its config and Cv alone (no tfjs variables): what
 * `bvllm convert` plans and validates a checkpoint against (issue #18).
 */
import { qformerParameterShapes } from '@bvllm/core';
import type { FrameSelectConfig } from './config.js';

/**
 * `qformer-gumbel`: `vlm_att_query_temporal` [1, numQueryTokens, Cq], the temporal Q-Former
 * (`vlm_att_encoder_temporal.*`, cross-attending to Cv), `vlm_att_ln_temporal` [Cv] and
 * `vlm_att_projector_temporal` [Cv, Cq] + [Cv]. `uniform` / `all` keep only the temporal LayerNorm.
 */
export function frameSelectParameterShapes(config: FrameSelectConfig, visionWidth: number): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  if (config.kind === 'qformer-gumbel') {
    const q = config.qformer;
    shapes.set('vlm_att_query_temporal', [1, config.numQueryTokens, q.hiddenSize]);
    for (const [k, s] of qformerParameterShapes('vlm_att_encoder_temporal.', { ...q, encoderHiddenSize: visionWidth })) shapes.set(k, s);
  }
  shapes.set('vlm_att_ln_temporal.weight', [visionWidth]);
  shapes.set('vlm_att_ln_temporal.bias', [visionWidth]);
  if (config.kind === 'qformer-gumbel') {
    shapes.set('vlm_att_projector_temporal.weight', [visionWidth, config.qformer.hiddenSize]);
    shapes.set('vlm_att_projector_temporal.bias', [visionWidth]);
  }
  return shapes;
}
