/**
 * The language side's parameters by checkpoint key, from configs alone (no tfjs variables): the projector, Qwen2
 * and LoRA's PEFT keys. `bvllm convert` plans and validates checkpoints against these lists (issue #18), so a
 * 7 B decoder is checked from its file headers without being built. Matrices are `[out, in]`.
 */
import { PROJECTOR_KEYS, type ProjectorConfig } from './projector.js';
import { headDimOf, type Qwen2Config } from './qwen2-config.js';
import { QWEN2_PROJECTIONS, type Qwen2ProjectionName } from './qwen2-model.js';
import { peftKey, type LoraConfig } from './lora.js';

/** `[out, in]` of each projection of one decoder layer, by HF module name. */
function projectionShapes(config: Qwen2Config): Record<Qwen2ProjectionName, [number, number]> {
  const { hiddenSize: dim, intermediateSize: hidden, numHeads, numKvHeads } = config;
  const d = headDimOf(config);
  return {
    q_proj: [numHeads * d, dim],
    k_proj: [numKvHeads * d, dim],
    v_proj: [numKvHeads * d, dim],
    o_proj: [dim, numHeads * d],
    gate_proj: [hidden, dim],
    up_proj: [hidden, dim],
    down_proj: [dim, hidden],
  };
}

/** The HF module a projection sits in: `model.layers.{i}.{self_attn|mlp}.{name}`. */
const moduleOf = (name: Qwen2ProjectionName) => (['q_proj', 'k_proj', 'v_proj', 'o_proj'].includes(name) ? 'self_attn' : 'mlp');

/** `model.*` and, unless the head is tied to the embedding, `lm_head.weight`. Biases on q, k, v only (Qwen2). */
export function qwen2ParameterShapes(config: Qwen2Config): Map<string, number[]> {
  const { vocabSize, hiddenSize } = config;
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [vocabSize, hiddenSize]]]);
  const projections = projectionShapes(config);
  for (let i = 0; i < config.numLayers; i++) {
    const layer = `model.layers.${i}`;
    for (const name of QWEN2_PROJECTIONS) {
      const key = `${layer}.${moduleOf(name)}.${name}`;
      shapes.set(`${key}.weight`, projections[name]);
      if (name === 'q_proj' || name === 'k_proj' || name === 'v_proj') shapes.set(`${key}.bias`, [projections[name][0]]);
    }
    shapes.set(`${layer}.input_layernorm.weight`, [hiddenSize]);
    shapes.set(`${layer}.post_attention_layernorm.weight`, [hiddenSize]);
  }
  shapes.set('model.norm.weight', [hiddenSize]);
  if (!config.tieWordEmbeddings) shapes.set('lm_head.weight', [vocabSize, hiddenSize]);
  return shapes;
}

/** PEFT's `…lora_A.weight` [r, in] and `…lora_B.weight` [out, r] of every target projection. */
export function loraParameterShapes(qwen2: Qwen2Config, lora: LoraConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const projections = projectionShapes(qwen2);
  for (let i = 0; i < qwen2.numLayers; i++)
    for (const name of lora.targetModules) {
      const prefix = `model.layers.${i}.${moduleOf(name)}.${name}`;
      const [out, inF] = projections[name];
      shapes.set(peftKey(prefix, 'A'), [lora.r, inF]);
      shapes.set(peftKey(prefix, 'B'), [out, lora.r]);
    }
  return shapes;
}

/**
 * The projector's two layers (`PROJECTOR_KEYS[kind]`, each `.weight` + `.bias`): Cq → hidden → D, hidden being
 * `hiddenDim` or Cv (`linear2`) / D (`mlp2x_gelu`), as `projectorRegistry` builds it.
 */
export function projectorParameterShapes(config: ProjectorConfig, dims: { Cq: number; Cv: number; D: number }): Map<string, number[]> {
  const hidden = config.hiddenDim ?? (config.kind === 'linear2' ? dims.Cv : dims.D);
  const [first, second] = PROJECTOR_KEYS[config.kind];
  return new Map([
    [`${first}.weight`, [hidden, dims.Cq]],
    [`${first}.bias`, [hidden]],
    [`${second}.weight`, [dims.D, hidden]],
    [`${second}.bias`, [dims.D]],
  ]);
}
