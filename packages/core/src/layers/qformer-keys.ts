import type { KeyRule } from '../key-rules.js';

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Original LAVIS / B-VLLM Q-Former names → the Hugging Face names {@link QFormer} uses. `source` is the module that
 * holds the BertModel (`Qformer` in LAVIS checkpoints, `vlm_att_encoder_temporal` in B-VLLM's), `target` the prefix
 * of our parameters (with its trailing dot, or '').
 * HF drops the `bert.` level, calls BERT's `self` attention `attention`, and lower-cases the embedding LayerNorm.
 */
export function lavisQFormerKeys(source: string, target: string): KeyRule[] {
  const s = escape(source);
  return [
    // The masked-LM head (`cls.predictions.*`) serves InstructBLIP's pre-training only; HF's Q-Former model has none.
    { match: new RegExp(`^${s}\\.cls\\.`), drop: true },
    // An index buffer saved with the weights, not a parameter.
    { match: new RegExp(`^${s}\\.bert\\.embeddings\\.position_ids$`), drop: true },
    { match: new RegExp(`^${s}\\.bert\\.embeddings\\.LayerNorm\\.(weight|bias)$`), rename: `${target}embeddings.layernorm.$1` },
    {
      match: new RegExp(`^${s}\\.bert\\.encoder\\.layer\\.(\\d+)\\.(attention|crossattention)\\.self\\.(query|key|value)\\.(weight|bias)$`),
      rename: `${target}encoder.layer.$1.$2.attention.$3.$4`,
    },
    { match: new RegExp(`^${s}\\.bert\\.(.+)$`), rename: `${target}$1` },
  ];
}

/**
 * Hugging Face InstructBLIP (`qformer.*` inside a full checkpoint) → our prefix. Names are kept; only the prefix
 * moves, and HF's `position_ids` buffer (saved by older transformers versions) is dropped.
 */
export function hfQFormerKeys(source: string, target: string): KeyRule[] {
  const s = escape(source);
  return [
    { match: new RegExp(`^${s}\\.embeddings\\.position_ids$`), drop: true },
    { match: new RegExp(`^${s}\\.(.+)$`), rename: `${target}$1` },
  ];
}
