// A Qwen2 with random weights for the benchmarks, from tfjs's seeded generator (one seed per tensor, so every process
// builds the same weights; the JavaScript Rng would spend minutes on 0.5B draws). Norm weights are ones.
import { tf } from '@bvllm/core';
import { Qwen2Model } from '../dist/index.js';

/** Checkpoint key and shape of every weight of `config` (untied: no lm_head when the config ties it). */
export function qwen2WeightShapes(config) {
  const d = config.hiddenSize;
  const kvWidth = (config.numKvHeads * d) / config.numHeads;
  const shapes = [['model.embed_tokens.weight', [config.vocabSize, d]], ['model.norm.weight', [d]]];
  for (let i = 0; i < config.numLayers; i++) {
    for (const [name, shape] of [
      ['self_attn.q_proj.weight', [d, d]], ['self_attn.q_proj.bias', [d]],
      ['self_attn.k_proj.weight', [kvWidth, d]], ['self_attn.k_proj.bias', [kvWidth]],
      ['self_attn.v_proj.weight', [kvWidth, d]], ['self_attn.v_proj.bias', [kvWidth]],
      ['self_attn.o_proj.weight', [d, d]],
      ['mlp.gate_proj.weight', [config.intermediateSize, d]], ['mlp.up_proj.weight', [config.intermediateSize, d]],
      ['mlp.down_proj.weight', [d, config.intermediateSize]],
      ['input_layernorm.weight', [d]], ['post_attention_layernorm.weight', [d]],
    ])
      shapes.push([`model.layers.${i}.${name}`, shape]);
  }
  return shapes;
}

export function randomQwen2(config) {
  const norm = (k) => k.endsWith('norm.weight');
  return Qwen2Model.fromTensors(config, new Map(qwen2WeightShapes(config).map(([k, shape], i) => [k, norm(k) ? tf.ones(shape) : tf.randomNormal(shape, 0, 0.02, 'float32', i + 1)])));
}
