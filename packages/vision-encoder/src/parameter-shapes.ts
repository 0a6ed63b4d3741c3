/**
 * The tower's parameters by checkpoint key, from the config alone (no tfjs variables): the names and shapes
 * {@link VisionTransformer} creates, in each family's Hugging Face layout (see vit.ts). `bvllm convert` plans
 * and validates a checkpoint against this list without building the 1 B-parameter tower.
 */
import type { VitConfig } from './vit.js';

/** `prefix` goes before every key (`vision_tower.` inside a B-VLLM model folder). Matrices are `[out, in]`. */
export function vitParameterShapes(config: VitConfig, prefix = ''): Map<string, number[]> {
  const { family, hiddenSize: c, intermediateSize: ff, patchSize: p } = config;
  const shapes = new Map<string, number[]>();
  const set = (key: string, shape: number[]) => shapes.set(`${prefix}${key}`, shape);
  const linear = (key: string, inF: number, outF: number, bias = true) => {
    set(`${key}.weight`, [outF, inF]);
    if (bias) set(`${key}.bias`, [outF]);
  };
  const norm = (key: string) => {
    set(`${key}.weight`, [c]);
    set(`${key}.bias`, [c]);
  };
  const grid = config.imageSize / p;
  const tokens = grid * grid + (family === 'siglip' ? 0 : 1);
  if (family === 'instructblip') set('embeddings.class_embedding', [1, 1, c]);
  if (family === 'clip') set('embeddings.class_embedding', [c]);
  set('embeddings.patch_embedding.weight', [c, 3, p, p]);
  if (family !== 'clip') set('embeddings.patch_embedding.bias', [c]);
  if (family === 'instructblip') set('embeddings.position_embedding', [1, tokens, c]);
  else set('embeddings.position_embedding.weight', [tokens, c]);
  if (family === 'clip') norm('pre_layrnorm');
  for (let i = 0; i < config.numLayers; i++) {
    const l = `encoder.layers.${i}`;
    norm(`${l}.layer_norm1`);
    if (family === 'instructblip') {
      linear(`${l}.self_attn.qkv`, c, 3 * c, config.qkvBias);
      linear(`${l}.self_attn.projection`, c, c);
    } else for (const name of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linear(`${l}.self_attn.${name}`, c, c);
    norm(`${l}.layer_norm2`);
    linear(`${l}.mlp.fc1`, c, ff);
    linear(`${l}.mlp.fc2`, ff, c);
  }
  norm('post_layernorm');
  if (family === 'siglip') {
    set('head.probe', [1, 1, c]);
    set('head.attention.in_proj_weight', [3 * c, c]);
    set('head.attention.in_proj_bias', [3 * c]);
    linear('head.attention.out_proj', c, c);
    norm('head.layernorm');
    linear('head.mlp.fc1', c, ff);
    linear('head.mlp.fc2', ff, c);
  }
  return shapes;
}
