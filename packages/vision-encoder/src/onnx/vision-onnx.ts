/**
 * The vision tower as one ONNX graph (issue #10): a batch of preprocessed frames, NHWC `[B, S, S, 3]` as
 * `VisionEncoder.encode` takes them, → every token of the last block `[B, L, Cv]` (L = 1 + N with a [CLS], N for
 * SigLIP), with no final norm: the layer B-VLLM reads (spec §1.0). `post_layernorm` `[B, L, Cv]` is a second
 * output for ports that want HF's `last_hidden_state`, and SigLIP adds its pooling head's `pooled` `[B, Cv]`.
 * Same three layouts as vit.ts (`instructblip` EVA, `clip`, `siglip`), parameters read from the tower's store.
 */
import { tf } from '@bvllm/core';
import {
  GraphBuilder,
  QUANT_PRESETS,
  hfActivation,
  layerNorm,
  linear,
  multiHeadAttention,
  quantizeMatMuls,
  writeModel,
  type WeightInput,
  type WrittenModel,
} from '@bvllm/onnx';
import type { VisionEncoder } from '../vision-encoder.js';
import type { VisionTransformer } from '../vit.js';

/** Weight-only quantisation of the tower's MatMuls (MatMulNBits, block 32), or none. */
export type VisionQuantize = 'none' | 'int8' | 'int4';

export interface VisionExportOptions {
  /** Default `none`: float32 weights, outputs equal tfjs' to float rounding. */
  quantize?: VisionQuantize;
}

/** Graph input and output names. */
export const VISION_ONNX_NAMES = { pixels: 'pixel_values', lastBlock: 'last_block', postLayernorm: 'post_layernorm', pooled: 'pooled' } as const;

/** Bumped whenever the graph changes, so cached exports of older graphs are rebuilt. */
export const VISION_EXPORTER_VERSION = 'vision-onnx-1';

/** Builds the tower's graph from its current weights. */
export function buildVisionGraph(vit: VisionTransformer): GraphBuilder {
  const config = vit.config;
  const { family, hiddenSize: c, patchSize: p, imageSize: s, numHeads: heads, layerNormEps: eps } = config;
  const store = vit.store;
  const w = (key: string): WeightInput => store.get(key);
  const grid = vit.grid;
  const tokens = vit.numTokens;
  const g = new GraphBuilder(`vision-${family}`);
  const pixels = g.input(VISION_ONNX_NAMES.pixels, 'float32', ['batch', s, s, 3]);

  // Patch embedding as a MatMul over flattened (ky, kx, ch) patches, the same rearrangement as VisionTransformer.embed.
  const rows = g.op.reshape(g.op.transpose(g.op.reshape(pixels, [-1, p, grid, p * 3]), [0, 2, 1, 3]), [-1, grid * grid, p * p * 3]);
  const convWeight = tf.tidy(() => tf.reshape(tf.transpose(store.get('embeddings.patch_embedding.weight'), [0, 2, 3, 1]), [c, p * p * 3]));
  const bias = store.has('embeddings.patch_embedding.bias') ? w('embeddings.patch_embedding.bias') : undefined;
  let x = linear(g, rows, 'embeddings.patch_embedding', convWeight, bias);
  convWeight.dispose();
  if (family !== 'siglip') {
    const cls = store.get('embeddings.class_embedding');
    const clsToken = g.initializer('embeddings.class_embedding', cls.dataSync() as Float32Array, [1, 1, c]);
    const batch = g.op.concat([g.op.shape(pixels, 0, 1), g.int64([1, 1])], 0);
    x = g.op.concat([g.op.expand(clsToken, batch), x], 1);
  }
  const posKey = store.has('embeddings.position_embedding') ? 'embeddings.position_embedding' : 'embeddings.position_embedding.weight';
  x = g.op.add(x, g.initializer(posKey, store.get(posKey).dataSync() as Float32Array, [1, tokens, c]));
  if (family === 'clip') x = layerNorm(g, x, 'pre_layrnorm', w('pre_layrnorm.weight'), w('pre_layrnorm.bias'), eps);

  for (let i = 0; i < config.numLayers; i++) {
    const l = `encoder.layers.${i}`;
    const h = layerNorm(g, x, `${l}.layer_norm1`, w(`${l}.layer_norm1.weight`), w(`${l}.layer_norm1.bias`), eps);
    let qkv: string;
    if (family === 'instructblip') qkv = linear(g, h, `${l}.self_attn.qkv`, w(`${l}.self_attn.qkv.weight`), config.qkvBias ? w(`${l}.self_attn.qkv.bias`) : undefined);
    else {
      const parts = ['q_proj', 'k_proj', 'v_proj'].map((n) => `${l}.self_attn.${n}`);
      qkv = linear(g, h, `${l}.self_attn.qkv`, parts.map((n) => w(`${n}.weight`)), parts.map((n) => w(`${n}.bias`)));
    }
    const [q, k, v] = [0, 1, 2].map((j) => g.op.slice(qkv, [j * c], [(j + 1) * c], [-1]));
    const out = family === 'instructblip' ? `${l}.self_attn.projection` : `${l}.self_attn.out_proj`;
    const attn = linear(g, multiHeadAttention(g, q, k, v, heads, c / heads), out, w(`${out}.weight`), w(`${out}.bias`));
    x = g.op.add(x, attn);
    const h2 = layerNorm(g, x, `${l}.layer_norm2`, w(`${l}.layer_norm2.weight`), w(`${l}.layer_norm2.bias`), eps);
    x = g.op.add(x, mlp(g, h2, `${l}.mlp`, w, config.hiddenAct));
  }
  g.output(VISION_ONNX_NAMES.lastBlock, 'float32', ['batch', tokens, c], x);
  const normed = layerNorm(g, x, 'post_layernorm', w('post_layernorm.weight'), w('post_layernorm.bias'), eps);
  g.output(VISION_ONNX_NAMES.postLayernorm, 'float32', ['batch', tokens, c], normed);
  if (family === 'siglip') g.output(VISION_ONNX_NAMES.pooled, 'float32', ['batch', c], poolingHead(g, normed, w, c, heads, eps, config.hiddenAct));
  return g;
}

function mlp(g: GraphBuilder, x: string, prefix: string, w: (key: string) => WeightInput, act: string): string {
  const up = linear(g, x, `${prefix}.fc1`, w(`${prefix}.fc1.weight`), w(`${prefix}.fc1.bias`));
  return linear(g, hfActivation(g, up, act), `${prefix}.fc2`, w(`${prefix}.fc2.weight`), w(`${prefix}.fc2.bias`));
}

/** SigLIP's attention-pooling head: the learned probe attends over all tokens, then a residual MLP → `[B, Cv]`. */
function poolingHead(g: GraphBuilder, x: string, w: (key: string) => WeightInput, c: number, heads: number, eps: number, act: string): string {
  const inProj = tf.split(w('head.attention.in_proj_weight') as tf.Tensor, 3, 0);
  const inBias = tf.split(w('head.attention.in_proj_bias') as tf.Tensor, 3, 0);
  const probe = g.initializer('head.probe', (w('head.probe') as tf.Tensor).dataSync() as Float32Array, [1, 1, c]);
  const batch = g.op.concat([g.op.shape(x, 0, 1), g.int64([1, 1])], 0);
  const q = linear(g, g.op.expand(probe, batch), 'head.attention.q', inProj[0], inBias[0]);
  const kv = linear(g, x, 'head.attention.kv', [inProj[1], inProj[2]], [inBias[1], inBias[2]]);
  tf.dispose([...inProj, ...inBias]);
  const [k, v] = [0, 1].map((j) => g.op.slice(kv, [j * c], [(j + 1) * c], [-1]));
  const h = linear(g, multiHeadAttention(g, q, k, v, heads, c / heads), 'head.attention.out_proj', w('head.attention.out_proj.weight'), w('head.attention.out_proj.bias'));
  const normed = layerNorm(g, h, 'head.layernorm', w('head.layernorm.weight'), w('head.layernorm.bias'), eps);
  return g.op.reshape(g.op.add(h, mlp(g, normed, 'head.mlp', w, act)), [-1, c]);
}

/**
 * Writes the tower's graph to `outPath` (weights over 1 GiB go to `<file>.onnx.data` beside it), optionally with
 * weight-only int8/int4 MatMuls.
 */
export function exportVisionEncoderOnnx(encoder: Pick<VisionEncoder, 'model'>, outPath: string, options: VisionExportOptions = {}): WrittenModel {
  const g = buildVisionGraph(encoder.model);
  const quantize = options.quantize ?? 'none';
  if (quantize !== 'none') quantizeMatMuls(g, QUANT_PRESETS[quantize]);
  return writeModel(g, outPath);
}
