import type { KeyRule } from '@bvllm/core';

/** Hugging Face `SiglipVisionModel` (or a whole `SiglipModel`) → our ViT (`siglip` family, HF names). */
export const siglipVisionKeys: readonly KeyRule[] = [
  // A SiglipModel checkpoint also carries the text tower and the sigmoid-loss scale and bias.
  { match: /^(text_model\.|logit_scale$|logit_bias$)/, drop: true },
  // An index buffer saved with the weights, not a parameter.
  { match: /\.position_ids$/, drop: true },
  { match: /^vision_model\./, rename: '' },
];
