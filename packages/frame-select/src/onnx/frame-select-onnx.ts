/**
 * The text-conditioned frame selector as two ONNX graphs (issue #10, #18; spec §1.1 (a)):
 *   select:  Hq = QFormer_t(question, Qt[:K], frame features)[:, :K]    [K, Cq]
 *            S  = Wp(Hq) · featᵀ · scale                                 [K, T]
 *            W  = softmax((S + G) / τ) over frames                       [K, T]
 *   mix:     X  = W · LN_t(P)                                            [K, N, Cv]
 * The Gumbel noise G is a graph input, so a run is deterministic and testable; at inference it is drawn from the
 * context's seeded generator exactly as the tfjs stage draws it (D4), so both runtimes select the same frames.
 * The mix is its own graph so the caller can feed the patches of only the Ts frames it kept (D10: [CLS] is scored
 * raw, patches are normalised): a long video's patches never have to be in memory at once.
 * Both graphs read their weights by checkpoint key (`vlm_att_*`) from {@link GraphWeights}, lazily.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { QFormerConfig } from '@bvllm/core';
import { GraphBuilder, convertToFloat16, layerNorm, linear, mapWeight, qformerGraph, quantizeGraph, weightInitializer, writeModel, type GraphWeights, type QuantizePreset } from '@bvllm/onnx';
import type { QFormerGumbelConfig } from '../config.js';

/** What the graphs need besides weights: the selector's config and the vision width Cv. */
export interface FrameSelectSpec {
  config: QFormerGumbelConfig;
  /** Cv, the width of the frame features and patches. */
  visionWidth: number;
}

/** Graph input and output names. */
export const FRAME_SELECT_ONNX_NAMES = {
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  frameFeatures: 'frame_features',
  gumbelNoise: 'gumbel_noise',
  scores: 'scores',
  frameWeights: 'frame_weights',
  patches: 'patches',
  selected: 'selected',
} as const;

/** Bumped whenever the graphs change, so cached exports of older graphs are rebuilt. */
export const FRAME_SELECT_EXPORTER_VERSION = 'frame-select-onnx-2';
export const FRAME_SELECT_ONNX_FILE = 'frame-select.onnx';
export const FRAME_MIX_ONNX_FILE = 'frame-mix.onnx';

export interface FrameSelectExportOptions {
  /**
   * Quantisation of the Q-Former's MatMuls (see `QUANT_PRESETS` in `@bvllm/onnx`): `dynamic-int8` keeps a quarter of
   * the float32 bytes resident; default none.
   */
  quantize?: QuantizePreset;
  /** Default `float32`. `float16` stores the weights as f16 (graph inputs and outputs stay float32). */
  dtype?: 'float32' | 'float16';
}

/**
 * The scoring graph. Inputs: `input_ids`, `attention_mask` int64 `[1, Lt]`, `frame_features` `[T, Cv]` (the
 * selection feature: raw [CLS] by default, D10), `gumbel_noise` `[K, T]`. Outputs: `scores` S and `frame_weights`
 * W, both `[K, T]`. Reads `vlm_att_query_temporal` (first K rows), `vlm_att_encoder_temporal.*` and
 * `vlm_att_projector_temporal.*`.
 */
export function buildFrameSelectGraph(spec: FrameSelectSpec, weights: GraphWeights): GraphBuilder {
  const { numQueries: k, tau } = spec.config;
  const cv = spec.visionWidth;
  const cq = spec.config.qformer.hiddenSize;
  const weight = (key: string) => weights.get(key);
  const n = FRAME_SELECT_ONNX_NAMES;
  const g = new GraphBuilder('frame-select');
  const inputIds = g.input(n.inputIds, 'int64', [1, 'text_length']);
  const attentionMask = g.input(n.attentionMask, 'int64', [1, 'text_length']);
  const features = g.input(n.frameFeatures, 'float32', ['num_frames', cv]);
  const noise = g.input(n.gumbelNoise, 'float32', [k, 'num_frames']);
  // Only the first K of the stored rows select frames (D14); `[1, rows, Cq]` is row-major, so they are a prefix.
  const rows = mapWeight(weights.get('vlm_att_query_temporal'), [1, k, cq], (stored) => stored.slice(0, k * cq));
  const queries = weightInitializer(g, 'vlm_att_query_temporal', rows);
  // The T frames are ONE sequence of encoder states for the single question (spec §1.1 (a)).
  const encoderStates = g.op.unsqueeze(features, [0]);
  const config: QFormerConfig = { ...spec.config.qformer, encoderHiddenSize: cv };
  const hq = qformerGraph(g, weight, 'vlm_att_encoder_temporal.', config, { queries, numQueries: k, inputIds, attentionMask, encoderStates });
  const qp = linear(g, g.op.reshape(hq, [k, cq]), 'vlm_att_projector_temporal', weight('vlm_att_projector_temporal.weight'), weight('vlm_att_projector_temporal.bias'));
  const scale = spec.config.logitScale ?? 1 / Math.sqrt(cv);
  const scores = g.op.mul(g.op.matMul(qp, g.op.transpose(features, [1, 0])), g.float(scale));
  g.output(n.scores, 'float32', [k, 'num_frames'], scores);
  const frameWeights = g.op.softmax(g.op.div(g.op.add(scores, noise), g.float(tau)), -1);
  g.output(n.frameWeights, 'float32', [k, 'num_frames'], frameWeights);
  return g;
}

/**
 * The mixing graph (spec §1.1 (a) step X, D10). Inputs: `frame_weights` W `[K, Ts]` (the columns of the Ts frames
 * given), `patches` P `[Ts, N, Cv]` (raw, as the tower returns them). Output: `selected` `[K, N, Cv]` = W · LN_t(P).
 * Reads `vlm_att_ln_temporal.{weight,bias}`.
 */
export function buildFrameMixGraph(spec: FrameSelectSpec, weights: GraphWeights): GraphBuilder {
  const { numQueries: k, lnEps } = spec.config;
  const cv = spec.visionWidth;
  const n = FRAME_SELECT_ONNX_NAMES;
  const g = new GraphBuilder('frame-mix');
  const frameWeights = g.input(n.frameWeights, 'float32', [k, 'num_frames']);
  const patches = g.input(n.patches, 'float32', ['num_frames', 'num_patches', cv]);
  // LN_t is per token, so normalising only the given frames equals normalising all T and picking (frame-features.ts).
  const normed = layerNorm(g, patches, 'vlm_att_ln_temporal', weights.get('vlm_att_ln_temporal.weight'), weights.get('vlm_att_ln_temporal.bias'), lnEps);
  const mixed = g.op.matMul(frameWeights, g.op.reshape(normed, [0, -1]));
  g.output(n.selected, 'float32', [k, 'num_patches', cv], g.op.reshape(mixed, [k, -1, cv]));
  return g;
}

/** Writes both graphs into `outDir` as {@link FRAME_SELECT_ONNX_FILE} and {@link FRAME_MIX_ONNX_FILE}; returns their paths. */
export function exportFrameSelectOnnx(spec: FrameSelectSpec, weights: GraphWeights, outDir: string, options: FrameSelectExportOptions = {}): { select: string; mix: string } {
  mkdirSync(outDir, { recursive: true });
  const write = (g: GraphBuilder, file: string) => {
    if (options.dtype === 'float16') convertToFloat16(g);
    return writeModel(g, join(outDir, file)).path;
  };
  const select = buildFrameSelectGraph(spec, weights);
  if (options.quantize) quantizeGraph(select, options.quantize);
  return { select: write(select, FRAME_SELECT_ONNX_FILE), mix: write(buildFrameMixGraph(spec, weights), FRAME_MIX_ONNX_FILE) };
}
