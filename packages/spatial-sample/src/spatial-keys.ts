import { hfQFormerKeys, lavisQFormerKeys, type KeyRule } from '@bvllm/core';

/**
 * A B-VLLM checkpoint (keys without the LLM's `model.` prefix) → the `qformer` kind. The official model keeps the
 * LAVIS BERT names under `vlm_att_encoder_spatial.bert.`; `vlm_att_query_spatial` keeps its name.
 */
export const bvllmSpatialKeys: readonly KeyRule[] = [
  // Built but never called in the official forward pass (spec §7.10), so not ported.
  { match: /^vlm_att_ln_spatial\./, drop: true },
  ...lavisQFormerKeys('vlm_att_encoder_spatial', 'vlm_att_encoder_spatial.'),
];

/** A Hugging Face InstructBLIP checkpoint → the spatial sampler's initial weights (D14): its Q-Former and queries. */
export const instructBlipSpatialKeys: readonly KeyRule[] = [
  { match: /^query_tokens$/, rename: 'vlm_att_query_spatial' },
  // The vision tower and the LLM belong to other stages.
  { match: /^(vision_model|language_model|language_projection)\./, drop: true },
  ...hfQFormerKeys('qformer', 'vlm_att_encoder_spatial.'),
];
