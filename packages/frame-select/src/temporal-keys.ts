import { hfQFormerKeys, lavisQFormerKeys, type KeyRule } from '@bvllm/core';

/**
 * A B-VLLM checkpoint (keys without the LLM's `model.` prefix) → this stage. The official model keeps the LAVIS
 * BERT names under `vlm_att_encoder_temporal.bert.`; the queries, LayerNorm and projector keep their names.
 */
export const bvllmTemporalKeys: readonly KeyRule[] = lavisQFormerKeys('vlm_att_encoder_temporal', 'vlm_att_encoder_temporal.');

/**
 * A Hugging Face InstructBLIP checkpoint → the selector's initial weights (D14): its Q-Former and 32 queries, and
 * `vision_model.post_layernorm` (= LAVIS `ln_vision`) as the temporal LayerNorm (D13). It has no temporal projector:
 * that one starts random, so load the result with the projector's current values added.
 */
export const instructBlipTemporalKeys: readonly KeyRule[] = [
  { match: /^query_tokens$/, rename: 'vlm_att_query_temporal' },
  { match: /^vision_model\.post_layernorm\.(weight|bias)$/, rename: 'vlm_att_ln_temporal.$1' },
  // The vision tower and the LLM belong to other stages.
  { match: /^(vision_model|language_model|language_projection)\./, drop: true },
  ...hfQFormerKeys('qformer', 'vlm_att_encoder_temporal.'),
];
