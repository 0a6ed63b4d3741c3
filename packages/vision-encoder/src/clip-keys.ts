import type { KeyRule } from '@bvllm/core';

/** Hugging Face `CLIPVisionModel` (or a whole `CLIPModel`) → our ViT (`clip` family, HF names). */
export const clipVisionKeys: readonly KeyRule[] = [
  // A CLIPModel checkpoint also carries the text tower and the projection heads; the video model needs only vision.
  { match: /^(text_model\.|text_projection\.|visual_projection\.|logit_scale$)/, drop: true },
  // An index buffer saved with the weights, not a parameter.
  { match: /\.position_ids$/, drop: true },
  { match: /^vision_model\./, rename: '' },
];
