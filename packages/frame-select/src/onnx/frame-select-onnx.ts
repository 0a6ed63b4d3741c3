/**
 * The text-conditioned frame selector's scoring on onnxruntime-node (issue #10; spec §1.1 (a)):
 *   Hq = QFormer_t(question, Qt[:K], frame features)[:, :K]    [K, Cq]
 *   S  = Wp(Hq) · featᵀ · scale                                 [K, T]
 *   W  = softmax((S + G) / τ) over frames                       [K, T]
 * The Gumbel noise G is a graph input, so a run is deterministic and testable; at inference it is drawn from the
 * context's seeded generator exactly as the tfjs stage draws it (D4), so both runtimes select the same frames.
 * `X = W · LN_t(patches)` stays in tfjs: the patches already live there and it is one matmul.
 */
import { layerNorm, tf, type FrameSelection, type QFormerConfig, type StageContext } from '@bvllm/core';
import { GraphBuilder, createSession, exportCached, exportKey, linear, ort, qformerGraph, runSession, writeModel, type ExecutionProvider, type WrittenModel } from '@bvllm/onnx';
import { join } from 'node:path';
import { checkFrameFeatures, selectFrames } from '../frame-features.js';
import { frameWeightsFromScores } from '../gumbel-softmax.js';
import type { QFormerGumbelSelect } from '../qformer-gumbel-select.js';
import type { FrameSelectInput } from '../types.js';

/** Graph input and output names. */
export const FRAME_SELECT_ONNX_NAMES = {
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  frameFeatures: 'frame_features',
  gumbelNoise: 'gumbel_noise',
  scores: 'scores',
  frameWeights: 'frame_weights',
} as const;

/** Bumped whenever the graph changes, so cached exports of older graphs are rebuilt. */
export const FRAME_SELECT_EXPORTER_VERSION = 'frame-select-onnx-1';
export const FRAME_SELECT_ONNX_FILE = 'frame-select.onnx';

/** The stage's Q-Former shape with its encoder width (Cv). */
function qformerConfigOf(stage: QFormerGumbelSelect): QFormerConfig {
  return { ...stage.config.qformer, encoderHiddenSize: stage.visionWidth };
}

/**
 * The selector's graph from its current weights. Inputs: `input_ids`, `attention_mask` int64 `[1, Lt]`,
 * `frame_features` `[T, Cv]` (the selection feature: raw [CLS] by default, D10), `gumbel_noise` `[K, T]`.
 * Outputs: `scores` S and `frame_weights` W, both `[K, T]`.
 */
export function buildFrameSelectGraph(stage: QFormerGumbelSelect): GraphBuilder {
  const { numQueries: k, tau } = stage.config;
  const cv = stage.visionWidth;
  const cq = stage.config.qformer.hiddenSize;
  const vars = stage.variables();
  const weight = (key: string) => vars.get(key)!;
  const n = FRAME_SELECT_ONNX_NAMES;
  const g = new GraphBuilder('frame-select');
  const inputIds = g.input(n.inputIds, 'int64', [1, 'text_length']);
  const attentionMask = g.input(n.attentionMask, 'int64', [1, 'text_length']);
  const features = g.input(n.frameFeatures, 'float32', ['num_frames', cv]);
  const noise = g.input(n.gumbelNoise, 'float32', [k, 'num_frames']);
  const queryRows = tf.tidy(() => tf.slice(weight('vlm_att_query_temporal'), [0, 0, 0], [1, k, cq]));
  const queries = g.initializerFromTensor('vlm_att_query_temporal', queryRows);
  queryRows.dispose();
  // The T frames are ONE sequence of encoder states for the single question (spec §1.1 (a)).
  const encoderStates = g.op.unsqueeze(features, [0]);
  const hq = qformerGraph(g, weight, 'vlm_att_encoder_temporal.', qformerConfigOf(stage), { queries, numQueries: k, inputIds, attentionMask, encoderStates });
  const qp = linear(g, g.op.reshape(hq, [k, cq]), 'vlm_att_projector_temporal', weight('vlm_att_projector_temporal.weight'), weight('vlm_att_projector_temporal.bias'));
  const scale = stage.config.logitScale ?? 1 / Math.sqrt(cv);
  const scores = g.op.mul(g.op.matMul(qp, g.op.transpose(features, [1, 0])), g.float(scale));
  g.output(n.scores, 'float32', [k, 'num_frames'], scores);
  const weights = g.op.softmax(g.op.div(g.op.add(scores, noise), g.float(tau)), -1);
  g.output(n.frameWeights, 'float32', [k, 'num_frames'], weights);
  return g;
}

/** Writes the selector's graph (float32; it is small next to the vision tower and the LLM). */
export function exportFrameSelectOnnx(stage: QFormerGumbelSelect, outPath: string): WrittenModel {
  return writeModel(buildFrameSelectGraph(stage), outPath);
}

/** The folder holding an export of the selector's current weights under `cacheDir`, exporting on a miss. */
export async function exportFrameSelectCached(stage: QFormerGumbelSelect, cacheDir: string): Promise<string> {
  const weights = [...stage.variables()].sort(([a], [b]) => (a < b ? -1 : 1));
  const key = exportKey(FRAME_SELECT_EXPORTER_VERSION, weights, stage.config);
  return exportCached(cacheDir, `frame-select-${key}`, (folder) => {
    exportFrameSelectOnnx(stage, join(folder, FRAME_SELECT_ONNX_FILE));
  });
}

export interface OrtStageOptions {
  threads?: number;
  executionProviders?: readonly ExecutionProvider[];
}

/**
 * The qformer-gumbel selector at inference on onnxruntime-node: `apply` gives what the tfjs stage's `apply` gives
 * with `training: false` (same noise draw, same LN_t selection). Training stays on the tfjs stage.
 */
export class OrtFrameSelect {
  private constructor(
    readonly stage: QFormerGumbelSelect,
    private readonly session: ort.InferenceSession,
    readonly file: string,
  ) {}

  /** Exports (or finds cached under `cacheDir`) the stage's current weights and opens one session. */
  static async create(stage: QFormerGumbelSelect, cacheDir: string, options: OrtStageOptions = {}): Promise<OrtFrameSelect> {
    return OrtFrameSelect.open(stage, join(await exportFrameSelectCached(stage, cacheDir), FRAME_SELECT_ONNX_FILE), options);
  }

  static async open(stage: QFormerGumbelSelect, file: string, options: OrtStageOptions = {}): Promise<OrtFrameSelect> {
    return new OrtFrameSelect(stage, await createSession(file, options), file);
  }

  /** S and W `[K, T]` for the given noise G `[K, T]` (zeros: softmax(S/τ)). The caller owns both. */
  async run(input: FrameSelectInput, noise: tf.Tensor2D): Promise<{ scores: tf.Tensor2D; frameWeights: tf.Tensor2D }> {
    const { numFrames } = checkFrameFeatures(input.features, this.stage.visionWidth);
    const feature = this.selectionFeature(input);
    const n = FRAME_SELECT_ONNX_NAMES;
    const feeds = {
      [n.inputIds]: int64(await input.question.inputIds.data(), input.question.inputIds.shape),
      [n.attentionMask]: int64(await input.question.attentionMask.data(), input.question.attentionMask.shape),
      [n.frameFeatures]: new ort.Tensor('float32', (await feature.data()) as Float32Array, [numFrames, this.stage.visionWidth]),
      [n.gumbelNoise]: new ort.Tensor('float32', (await noise.data()) as Float32Array, noise.shape),
    };
    feature.dispose();
    const out = await runSession(this.session, feeds, this.file);
    const result = { scores: toTensor2d(out[n.scores]), frameWeights: toTensor2d(out[n.frameWeights]) };
    for (const t of Object.values(out)) t.dispose();
    return result;
  }

  /** The tfjs stage's inference `apply` (spec §1.1 (a), D4): frame weights, LN_t-selected patches, argmax frames. */
  async apply(input: FrameSelectInput, context: StageContext): Promise<FrameSelection> {
    const { numFrames } = checkFrameFeatures(input.features, this.stage.visionWidth);
    const { numQueries: k, inferenceNoise: mode, tau, lnEps } = this.stage.config;
    // Drawn exactly where and as the tfjs stage draws it, so a seed selects the same frames on both runtimes.
    const noise = mode === 'gumbel' ? (input.gumbelNoise ? tf.clone(input.gumbelNoise) : (context.rng.gumbel([k, numFrames]) as tf.Tensor2D)) : (tf.zeros([k, numFrames]) as tf.Tensor2D);
    const { scores, frameWeights: soft } = await this.run(input, noise);
    noise.dispose();
    let frameWeights = soft;
    if (mode === 'hard') {
      frameWeights = frameWeightsFromScores(scores, { tau, mode, straightThrough: false });
      soft.dispose();
    }
    scores.dispose();
    const vars = this.stage.variables();
    const norm = { apply: (x: tf.Tensor) => layerNorm(x, vars.get('vlm_att_ln_temporal.weight')!, vars.get('vlm_att_ln_temporal.bias')!, lnEps) };
    return selectFrames(frameWeights, input.features, norm);
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  /** `[T, Cv]`: raw [CLS] (D10), or the mean / max over raw patches (spec §5), as the tfjs stage. */
  private selectionFeature(input: FrameSelectInput): tf.Tensor2D {
    const { cls, patches } = input.features;
    switch (this.stage.config.selectionFeature) {
      case 'cls':
        return tf.clone(cls);
      case 'mean':
        return tf.mean(patches, 1) as tf.Tensor2D;
      case 'max':
        return tf.max(patches, 1) as tf.Tensor2D;
    }
  }
}

function int64(data: ArrayLike<number>, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(Array.from(data), (v) => BigInt(v)), dims);
}

function toTensor2d(t: ort.Tensor): tf.Tensor2D {
  return tf.tensor2d(t.data as Float32Array, t.dims as [number, number], 'float32');
}
