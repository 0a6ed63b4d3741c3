/**
 * The vision tower as one ONNX graph (issue #10): a batch of preprocessed frames, NHWC `[B, S, S, 3]` as
 * `VisionEncoder.encode` takes them, → every token of the last block `[B, L, Cv]` (L = 1 + N with a [CLS], N for
 * SigLIP), with no final norm: the layer B-VLLM reads (spec §1.0). `post_layernorm` `[B, L, Cv]` is a second
 * output for ports that want HF's `last_hidden_state`, and SigLIP adds its pooling head's `pooled` `[B, Cv]`.
 * Same three layouts as vit.ts (`instructblip` EVA, `clip`, `siglip`).
 *
 * Weights come from a {@link VitWeightSource} keyed by the HF vision names (issue #18): a tfjs tower, or a
 * checkpoint read one tensor at a time. Every layout change (the conv permutation, the SigLIP head's q/k/v rows,
 * transposes) happens inside a lazy initializer's `load()`, so nothing is read until the graph is written.
 */
import {
  GraphBuilder,
  convertToFloat16,
  hfActivation,
  layerNorm,
  linear,
  mapWeight,
  multiHeadAttention,
  quantizeGraph,
  tensorWeights,
  weightDims,
  weightInitializer,
  writeModel,
  type GraphWeights,
  type WeightInput,
  type QuantizePreset,
  type WrittenModel,
} from '@bvllm/onnx';
import type { VisionEncoder } from '../vision-encoder.js';
import type { VisionTransformer, VitConfig } from '../vit.js';

/**
 * Quantisation of the tower's MatMuls, or none: `dynamic-int8` (integer GEMM over the 257+ rows of each frame, the
 * fast one for a tower) or weight-only `int8`/`int4` blocks (see `QUANT_PRESETS` in `@bvllm/onnx`).
 */
export type VisionQuantize = 'none' | QuantizePreset;

export interface VisionExportOptions {
  /** Default `none`: float32 weights, outputs equal tfjs' to float rounding. */
  quantize?: VisionQuantize;
  /** Default `float32`. `float16` stores the weights as f16 (graph inputs and outputs stay float32). */
  dtype?: 'float32' | 'float16';
}

/** Graph input and output names. */
export const VISION_ONNX_NAMES = { pixels: 'pixel_values', lastBlock: 'last_block', postLayernorm: 'post_layernorm', pooled: 'pooled' } as const;

/** Bumped whenever the graph changes, so cached exports of older graphs are rebuilt. */
export const VISION_EXPORTER_VERSION = 'vision-onnx-2';

/** Where the graph's weights come from: a config plus weights keyed by the HF vision names (no `vision_tower.` prefix). */
export interface VitWeightSource extends GraphWeights {
  readonly config: VitConfig;
}

/**
 * A tower config with weights by HF vision key, e.g. `sourceWeights(folder, 'vision_tower.')` for a bvllm model
 * folder or `sourceWeights(instructBlip, 'vision_model.')` for an InstructBLIP checkpoint.
 */
export function vitWeightsFrom(config: VitConfig, weights: GraphWeights): VitWeightSource {
  return { config, has: (key) => weights.has(key), get: (key) => weights.get(key) };
}

/** A tower's current weights as a {@link VitWeightSource}. */
export function vitWeights(vit: VisionTransformer): VitWeightSource {
  return vitWeightsFrom(vit.config, tensorWeights(vit.store));
}

/** Rows `[start, end)` of a row-major `[rows, cols]` matrix (a vector when `cols` is absent), lazy when `w` is. */
function rowsOf(w: WeightInput, start: number, end: number): WeightInput {
  const [, cols = 1] = weightDims(w);
  const dims = weightDims(w).length === 1 ? [end - start] : [end - start, cols];
  return mapWeight(w, dims, (values) => values.slice(start * cols, end * cols));
}

/** PyTorch conv weight `[C, 3, p, p]` → `[C, p·p·3]` in (ky, kx, ch) order, the rows of the patch MatMul. */
function patchWeight(conv: WeightInput, c: number, p: number): WeightInput {
  return mapWeight(conv, [c, p * p * 3], (from) => {
    const out = new Float32Array(c * p * p * 3);
    for (let o = 0; o < c; o++)
      for (let ch = 0; ch < 3; ch++) for (let ky = 0; ky < p; ky++) for (let kx = 0; kx < p; kx++) out[((o * p + ky) * p + kx) * 3 + ch] = from[((o * 3 + ch) * p + ky) * p + kx];
    return out;
  });
}

/** Builds the tower's graph from a weight source (a `VisionTransformer` reads its current weights). */
export function buildVisionGraph(source: VisionTransformer | VitWeightSource): GraphBuilder {
  const weights = 'store' in source ? vitWeights(source) : source;
  const config = weights.config;
  const { family, hiddenSize: c, patchSize: p, imageSize: s, numHeads: heads, layerNormEps: eps } = config;
  const w = (key: string): WeightInput => weights.get(key);
  const grid = s / p;
  const tokens = grid * grid + (family === 'siglip' ? 0 : 1);
  const g = new GraphBuilder(`vision-${family}`);
  const pixels = g.input(VISION_ONNX_NAMES.pixels, 'float32', ['batch', s, s, 3]);

  // Patch embedding as a MatMul over flattened (ky, kx, ch) patches, the same rearrangement as VisionTransformer.embed.
  const rows = g.op.reshape(g.op.transpose(g.op.reshape(pixels, [-1, p, grid, p * 3]), [0, 2, 1, 3]), [-1, grid * grid, p * p * 3]);
  const bias = weights.has('embeddings.patch_embedding.bias') ? w('embeddings.patch_embedding.bias') : undefined;
  let x = linear(g, rows, 'embeddings.patch_embedding', patchWeight(w('embeddings.patch_embedding.weight'), c, p), bias);
  if (family !== 'siglip') {
    const clsToken = weightInitializer(g, 'embeddings.class_embedding', w('embeddings.class_embedding'), [1, 1, c]);
    const batch = g.op.concat([g.op.shape(pixels, 0, 1), g.int64([1, 1])], 0);
    x = g.op.concat([g.op.expand(clsToken, batch), x], 1);
  }
  const posKey = weights.has('embeddings.position_embedding') ? 'embeddings.position_embedding' : 'embeddings.position_embedding.weight';
  x = g.op.add(x, weightInitializer(g, posKey, w(posKey), [1, tokens, c]));
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
  // torch.nn.MultiheadAttention stacks q, k, v in one [3C, C] matrix and one [3C] bias.
  const inProj = w('head.attention.in_proj_weight');
  const inBias = w('head.attention.in_proj_bias');
  const [wq, wk, wv] = [0, 1, 2].map((j) => rowsOf(inProj, j * c, (j + 1) * c));
  const [bq, bk, bv] = [0, 1, 2].map((j) => rowsOf(inBias, j * c, (j + 1) * c));
  const probe = weightInitializer(g, 'head.probe', w('head.probe'), [1, 1, c]);
  const batch = g.op.concat([g.op.shape(x, 0, 1), g.int64([1, 1])], 0);
  const q = linear(g, g.op.expand(probe, batch), 'head.attention.q', wq, bq);
  const kv = linear(g, x, 'head.attention.kv', [wk, wv], [bk, bv]);
  const [k, v] = [0, 1].map((j) => g.op.slice(kv, [j * c], [(j + 1) * c], [-1]));
  const h = linear(g, multiHeadAttention(g, q, k, v, heads, c / heads), 'head.attention.out_proj', w('head.attention.out_proj.weight'), w('head.attention.out_proj.bias'));
  const normed = layerNorm(g, h, 'head.layernorm', w('head.layernorm.weight'), w('head.layernorm.bias'), eps);
  return g.op.reshape(g.op.add(h, mlp(g, normed, 'head.mlp', w, act)), [-1, c]);
}

/**
 * Writes the tower's graph to `outPath` (weights over 1 GiB, or any graph read from a checkpoint, go to
 * `<file>.onnx.data` beside it, one tensor at a time), optionally with quantised MatMuls and f16 weights.
 */
export function exportVisionEncoderOnnx(encoder: Pick<VisionEncoder, 'model'> | VitWeightSource, outPath: string, options: VisionExportOptions = {}): WrittenModel {
  const g = buildVisionGraph('model' in encoder ? encoder.model : encoder);
  const quantize = options.quantize ?? 'none';
  if (quantize !== 'none') quantizeGraph(g, quantize);
  if (options.dtype === 'float16') convertToFloat16(g);
  return writeModel(g, outPath);
}
