import { tf, type KeyRule } from '@bvllm/core';

/**
 * LAVIS `eva_vit_g.pth` names (what B-VLLM loads, spec §1.0) → our ViT (`instructblip` family, HF names). Also
 * accepts a whole LAVIS InstructBLIP checkpoint, whose tower sits under `visual_encoder.`.
 */
export const lavisVisionKeys: readonly KeyRule[] = [
  { match: /^(Qformer\.|query_tokens$|llm_proj\.|llm_model\.|t5_proj\.|t5_model\.|opt_proj\.|opt_model\.)/, drop: true },
  { match: /^(?:visual_encoder\.)?cls_token$/, rename: 'embeddings.class_embedding' },
  { match: /^(?:visual_encoder\.)?pos_embed$/, rename: 'embeddings.position_embedding' },
  { match: /^(?:visual_encoder\.)?patch_embed\.proj\.(weight|bias)$/, rename: 'embeddings.patch_embedding.$1' },
  { match: /^(?:visual_encoder\.)?blocks\.(\d+)\.norm([12])\.(weight|bias)$/, rename: 'encoder.layers.$1.layer_norm$2.$3' },
  { match: /^(?:visual_encoder\.)?blocks\.(\d+)\.attn\.qkv\.weight$/, rename: 'encoder.layers.$1.self_attn.qkv.weight' },
  // EVA keeps q and v biases apart and has no k bias; fuseLavisQkvBias joins them into HF's one qkv bias.
  { match: /^(?:visual_encoder\.)?blocks\.(\d+)\.attn\.([qv])_bias$/, rename: 'encoder.layers.$1.self_attn.$2_bias' },
  { match: /^(?:visual_encoder\.)?blocks\.(\d+)\.attn\.proj\.(weight|bias)$/, rename: 'encoder.layers.$1.self_attn.projection.$2' },
  { match: /^(?:visual_encoder\.)?blocks\.(\d+)\.mlp\.(fc[12])\.(weight|bias)$/, rename: 'encoder.layers.$1.mlp.$2.$3' },
  // `ln_vision` is InstructBLIP's norm over EVA's output; HF calls the same tensor the tower's post_layernorm.
  { match: /^ln_vision\.(weight|bias)$/, rename: 'post_layernorm.$1' },
];

/**
 * Joins each layer's renamed `q_bias` and `v_bias` into `qkv.bias = [q_bias | 0 | v_bias]` (the zero k third is
 * what HF's conversion writes). A KeyRule maps one tensor, so this two-into-one step runs after the table.
 * Consumes (disposes) the parts; returns a new map.
 */
export function fuseLavisQkvBias(tensors: ReadonlyMap<string, tf.Tensor>): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [key, tensor] of tensors) {
    const q = /^(encoder\.layers\.\d+\.self_attn)\.q_bias$/.exec(key);
    if (q && tensors.has(`${q[1]}.v_bias`)) {
      const v = tensors.get(`${q[1]}.v_bias`)!;
      out.set(`${q[1]}.qkv.bias`, tf.tidy(() => tf.concat([tensor, tf.zerosLike(tensor), v])));
      tensor.dispose();
      v.dispose();
    } else if (/\.v_bias$/.test(key) && tensors.has(key.replace(/v_bias$/, 'q_bias'))) continue;
    else out.set(key, tensor);
  }
  return out;
}
