import type { KeyRule } from '@bvllm/core';

/**
 * Hugging Face `InstructBlipVisionModel` / `Blip2VisionModel` → our ViT (`instructblip` family). Our parameters
 * carry the HF names, so only the exceptions are listed.
 */
export const instructBlipVisionKeys: readonly KeyRule[] = [
  // A full InstructBLIP/BLIP-2 checkpoint also holds the Q-Former and the LLM; the vision tower needs none of them.
  { match: /^(qformer\.|query_tokens$|language_projection\.|language_model\.)/, drop: true },
  // The full model nests the tower under `vision_model.`; the standalone vision model does not.
  { match: /^vision_model\./, rename: '' },
];
