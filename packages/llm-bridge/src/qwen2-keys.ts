import type { KeyRule } from '@bvllm/core';

/**
 * Hugging Face `Qwen2ForCausalLM` checkpoint → our parameters. HF names are kept, so only exceptions are listed.
 * `tied` is the config's `tie_word_embeddings`.
 */
export function qwen2KeyRules(tied: boolean): KeyRule[] {
  return [
    // Older exports save the rotary frequencies as a buffer; we compute them from rope_theta.
    { match: /\.rotary_emb\.inv_freq$/, drop: true },
    // Some tied checkpoints still store the head (a copy of the embedding); the tied model reads the embedding.
    ...(tied ? [{ match: /^lm_head\.weight$/, drop: true }] : []),
  ];
}
