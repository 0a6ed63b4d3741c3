/**
 * The spatial Q-Former as one ONNX graph (issue #10, #18; spec §1.1 (c)–(e)): every kept frame is one batch row of
 * the same question, so K' frames run as one batch:
 *   Z = QFormer_s(question ×K', Qs, merged)[:, :R]              [K', R, Cq]
 *   V = second(act(first(Z))), frame-major                       [K'·R, D]   (when the spec names a projector)
 * The budget (ToMe) merge, when N' < R, is data-dependent and stays outside the graph, between Z and the projector.
 * Weights are read by checkpoint key (`vlm_att_query_spatial`, `vlm_att_encoder_spatial.*`, the projector's two
 * Linears) from {@link GraphWeights}, lazily.
 */
import type { QFormerConfig } from '@bvllm/core';
import {
  GraphBuilder,
  convertToFloat16,
  gelu,
  linear,
  qformerGraph,
  quantizeGraph,
  weightDims,
  weightInitializer,
  writeModel,
  type GraphWeights,
  type WrittenModel,
  type QuantizePreset,
} from '@bvllm/onnx';
import type { QFormerSampleConfig } from '../config.js';

/**
 * The projector that follows the sampler in the same graph (`@bvllm/llm-bridge` `Projector`, its `PROJECTOR_KEYS`):
 * `linear2` (B-VLLM's two Linears, no activation, D9) or `mlp2x_gelu` (exact GELU between them). `keys` are the
 * two Linears' checkpoint prefixes, each with `.weight` `[out, in]` and `.bias` `[out]`.
 */
export interface SpatialProjectorSpec {
  kind: 'linear2' | 'mlp2x_gelu';
  keys: readonly [string, string];
}

/** What the graph needs besides weights: the sampler's config, the vision width Cv and an optional projector. */
export interface SpatialSampleSpec {
  config: QFormerSampleConfig;
  /** Cv, the width of the merged frames' patches. */
  visionWidth: number;
  projector?: SpatialProjectorSpec;
}

export interface SpatialExportOptions {
  /**
   * Quantisation of the Q-Former's and projector's MatMuls (see `QUANT_PRESETS` in `@bvllm/onnx`): `dynamic-int8` keeps a quarter of
   * the float32 bytes resident; default none.
   */
  quantize?: QuantizePreset;
  /** Default `float32`. `float16` stores the weights as f16 (graph inputs and outputs stay float32). */
  dtype?: 'float32' | 'float16';
}

/** Graph input and output names. */
export const SPATIAL_ONNX_NAMES = {
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  merged: 'merged',
  spatialTokens: 'spatial_tokens',
  visualEmbeds: 'visual_embeds',
} as const;

/** Bumped whenever the graph changes, so cached exports of older graphs are rebuilt. */
export const SPATIAL_EXPORTER_VERSION = 'spatial-sample-onnx-2';
export const SPATIAL_ONNX_FILE = 'spatial-sample.onnx';

/**
 * The sampler's graph. Inputs: `input_ids`, `attention_mask` int64 `[1, Lt]` (one question, broadcast over the
 * frames), `merged` `[K', N, Cv]`. Outputs: `spatial_tokens` Z `[K', R, Cq]`, and with a projector
 * `visual_embeds` `[K'·R, D]`.
 */
export function buildSpatialSampleGraph(spec: SpatialSampleSpec, weights: GraphWeights): GraphBuilder {
  const r = spec.config.numQueries;
  const cq = spec.config.qformer.hiddenSize;
  const cv = spec.visionWidth;
  const weight = (key: string) => weights.get(key);
  const n = SPATIAL_ONNX_NAMES;
  const g = new GraphBuilder('spatial-sample');
  const inputIds = g.input(n.inputIds, 'int64', [1, 'text_length']);
  const attentionMask = g.input(n.attentionMask, 'int64', [1, 'text_length']);
  const merged = g.input(n.merged, 'float32', ['num_frames', 'num_patches', cv]);
  // The same question conditions every frame (spec §1.1 (c): `ids[:1].repeat(k', 1)`).
  const rows = g.op.concat([g.op.shape(merged, 0, 1), g.int64([1])], 0);
  const queries = weightInitializer(g, 'vlm_att_query_spatial', weight('vlm_att_query_spatial'));
  const config: QFormerConfig = { ...spec.config.qformer, encoderHiddenSize: cv };
  const z = qformerGraph(g, weight, 'vlm_att_encoder_spatial.', config, {
    queries,
    numQueries: r,
    inputIds: g.op.expand(inputIds, rows),
    attentionMask: g.op.expand(attentionMask, rows),
    encoderStates: merged,
  });
  g.output(n.spatialTokens, 'float32', ['num_frames', r, cq], z);
  if (spec.projector) {
    const [first, second] = spec.projector.keys;
    let h = linear(g, g.op.reshape(z, [-1, cq]), first, weight(`${first}.weight`), weight(`${first}.bias`));
    if (spec.projector.kind === 'mlp2x_gelu') h = gelu(g, h);
    const secondWeight = weight(`${second}.weight`);
    const v = linear(g, h, second, secondWeight, weight(`${second}.bias`));
    g.output(n.visualEmbeds, 'float32', ['visual_tokens', weightDims(secondWeight)[0]], v);
  }
  return g;
}

/** Writes the sampler's graph (with the projector when the spec names one). */
export function exportSpatialSampleOnnx(spec: SpatialSampleSpec, weights: GraphWeights, outPath: string, options: SpatialExportOptions = {}): WrittenModel {
  const g = buildSpatialSampleGraph(spec, weights);
  if (options.quantize) quantizeGraph(g, options.quantize);
  if (options.dtype === 'float16') convertToFloat16(g);
  return writeModel(g, outPath);
}
