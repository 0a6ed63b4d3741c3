/**
 * The spatial Q-Former on onnxruntime-node (issue #10; spec §1.1 (c)–(e)): every kept frame is one batch row of
 * the same question, so K' frames run as one batch:
 *   Z = QFormer_s(question ×K', Qs, merged)[:, :R]              [K', R, Cq]
 *   V = second(act(first(Z))), frame-major                       [K'·R, D]   (when the projector is exported too)
 * The budget (ToMe) merge, when N' < R, stays in tfjs between Z and the projector; it is cheap and data-dependent.
 */
import { join } from 'node:path';
import { assertShape, tf, type QFormerConfig, type SpatialTokens, type StageContext } from '@bvllm/core';
import {
  GraphBuilder,
  createSession,
  exportCached,
  exportKey,
  gelu,
  linear,
  ort,
  qformerGraph,
  runSession,
  writeModel,
  type ExecutionProvider,
  type WrittenModel,
} from '@bvllm/onnx';
import { multiLayerMerge } from '@bvllm/token-merge';
import { checkMergedFrames } from '../merged-frames.js';
import type { QFormerSample } from '../qformer-sample.js';
import type { SpatialSampleInput } from '../types.js';

/** Graph input and output names. */
export const SPATIAL_ONNX_NAMES = {
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  merged: 'merged',
  spatialTokens: 'spatial_tokens',
  visualEmbeds: 'visual_embeds',
} as const;

/** Bumped whenever the graph changes, so cached exports of older graphs are rebuilt. */
export const SPATIAL_EXPORTER_VERSION = 'spatial-sample-onnx-1';
export const SPATIAL_ONNX_FILE = 'spatial-sample.onnx';

/** One Linear of the projector: weight `[out, in]` (HF layout) and bias `[out]`. */
export interface LinearWeights {
  weight: tf.Tensor;
  bias: tf.Tensor;
}

/**
 * The projector that follows the spatial sampler (`@bvllm/llm-bridge` `Projector`): `linear2` (B-VLLM's two
 * Linears, no activation, D9) or `mlp2x_gelu` (exact GELU between them).
 */
export interface SpatialProjectorWeights {
  first: LinearWeights;
  second: LinearWeights;
  activation: 'none' | 'gelu';
}

/**
 * The sampler's graph from its current weights. Inputs: `input_ids`, `attention_mask` int64 `[1, Lt]` (one
 * question, broadcast over the frames), `merged` `[K', N, Cv]`. Outputs: `spatial_tokens` Z `[K', R, Cq]`, and
 * with a projector `visual_embeds` `[K'·R, D]`.
 */
export function buildSpatialSampleGraph(stage: QFormerSample, projector?: SpatialProjectorWeights): GraphBuilder {
  const r = stage.config.numQueries;
  const cq = stage.outDim;
  const cv = stage.visionWidth;
  const vars = stage.variables();
  const weight = (key: string) => vars.get(key)!;
  const n = SPATIAL_ONNX_NAMES;
  const g = new GraphBuilder('spatial-sample');
  const inputIds = g.input(n.inputIds, 'int64', [1, 'text_length']);
  const attentionMask = g.input(n.attentionMask, 'int64', [1, 'text_length']);
  const merged = g.input(n.merged, 'float32', ['num_frames', 'num_patches', cv]);
  // The same question conditions every frame (spec §1.1 (c): `ids[:1].repeat(k', 1)`).
  const rows = g.op.concat([g.op.shape(merged, 0, 1), g.int64([1])], 0);
  const queries = g.initializerFromTensor('vlm_att_query_spatial', weight('vlm_att_query_spatial'));
  const config: QFormerConfig = { ...stage.config.qformer, encoderHiddenSize: cv };
  const z = qformerGraph(g, weight, 'vlm_att_encoder_spatial.', config, {
    queries,
    numQueries: r,
    inputIds: g.op.expand(inputIds, rows),
    attentionMask: g.op.expand(attentionMask, rows),
    encoderStates: merged,
  });
  g.output(n.spatialTokens, 'float32', ['num_frames', r, cq], z);
  if (projector) {
    let h = linear(g, g.op.reshape(z, [-1, cq]), 'projector.first', projector.first.weight, projector.first.bias);
    if (projector.activation === 'gelu') h = gelu(g, h);
    const v = linear(g, h, 'projector.second', projector.second.weight, projector.second.bias);
    g.output(n.visualEmbeds, 'float32', ['visual_tokens', projector.second.weight.shape[0]], v);
  }
  return g;
}

/** Writes the sampler's graph (with the projector when given), float32. */
export function exportSpatialSampleOnnx(stage: QFormerSample, outPath: string, projector?: SpatialProjectorWeights): WrittenModel {
  return writeModel(buildSpatialSampleGraph(stage, projector), outPath);
}

/** The folder holding an export of the sampler's (and projector's) current weights, exporting on a miss. */
export async function exportSpatialSampleCached(stage: QFormerSample, cacheDir: string, projector?: SpatialProjectorWeights): Promise<string> {
  const weights: [string, tf.Tensor][] = [...stage.variables()].sort(([a], [b]) => (a < b ? -1 : 1));
  if (projector)
    weights.push(['projector.first.weight', projector.first.weight], ['projector.first.bias', projector.first.bias], ['projector.second.weight', projector.second.weight], ['projector.second.bias', projector.second.bias]);
  const key = exportKey(SPATIAL_EXPORTER_VERSION, weights, { config: stage.config, projector: projector?.activation ?? null });
  return exportCached(cacheDir, `spatial-sample-${key}`, (folder) => {
    exportSpatialSampleOnnx(stage, join(folder, SPATIAL_ONNX_FILE), projector);
  });
}

export interface OrtSpatialOptions {
  threads?: number;
  executionProviders?: readonly ExecutionProvider[];
  /** The projector to run in the same graph; its output is used when no budget merge intervenes. */
  projector?: SpatialProjectorWeights;
}

/** What {@link OrtSpatialSample.apply} returns: the stage's output, plus the projected tokens when the graph has them. */
export interface OrtSpatialTokens extends SpatialTokens {
  /** `[K'·R, D]`, present only with an exported projector and no budget merge (N' ≥ R). */
  visualEmbeds?: tf.Tensor2D;
}

/** The qformer spatial sampler at inference on onnxruntime-node; training stays on the tfjs stage. */
export class OrtSpatialSample {
  private constructor(
    readonly stage: QFormerSample,
    private readonly session: ort.InferenceSession,
    readonly file: string,
    readonly hasProjector: boolean,
  ) {}

  static async create(stage: QFormerSample, cacheDir: string, options: OrtSpatialOptions = {}): Promise<OrtSpatialSample> {
    const folder = await exportSpatialSampleCached(stage, cacheDir, options.projector);
    return OrtSpatialSample.open(stage, join(folder, SPATIAL_ONNX_FILE), options);
  }

  /** A session on an exported file; `options.projector` must say whether that file holds the projector. */
  static async open(stage: QFormerSample, file: string, options: OrtSpatialOptions = {}): Promise<OrtSpatialSample> {
    const session = await createSession(file, { threads: options.threads, executionProviders: options.executionProviders });
    return new OrtSpatialSample(stage, session, file, options.projector !== undefined);
  }

  /** Z `[K', R, Cq]` before any budget merge, and V `[K'·R, D]` with a projector. The caller owns both. */
  async run(input: SpatialSampleInput): Promise<{ spatialTokens: tf.Tensor3D; visualEmbeds?: tf.Tensor2D }> {
    checkMergedFrames(input.merged, this.stage.visionWidth);
    assertShape('question.inputIds', input.question.inputIds, [1, 'Lt']);
    const n = SPATIAL_ONNX_NAMES;
    const { inputIds, attentionMask } = input.question;
    const merged = input.merged.merged;
    const feeds = {
      [n.inputIds]: int64(await inputIds.data(), inputIds.shape),
      [n.attentionMask]: int64(await attentionMask.data(), attentionMask.shape),
      [n.merged]: new ort.Tensor('float32', (await merged.data()) as Float32Array, merged.shape),
    };
    const out = await runSession(this.session, feeds, this.file);
    const z = out[n.spatialTokens];
    const v = out[n.visualEmbeds];
    const result = {
      spatialTokens: tf.tensor3d(z.data as Float32Array, z.dims as [number, number, number], 'float32'),
      visualEmbeds: v ? tf.tensor2d(v.data as Float32Array, v.dims as [number, number], 'float32') : undefined,
    };
    for (const t of Object.values(out)) t.dispose();
    return result;
  }

  /** The tfjs stage's `apply` (budget merge in tfjs when N' < R), plus V when the graph's projector output applies. */
  async apply(input: SpatialSampleInput, _context?: StageContext): Promise<OrtSpatialTokens> {
    const { spatialTokens: z, visualEmbeds } = await this.run(input);
    const target = this.stage.tokensPerFrame(z.shape[0]);
    if (target >= this.stage.config.numQueries) return visualEmbeds ? { spatialTokens: z, visualEmbeds } : { spatialTokens: z };
    visualEmbeds?.dispose();
    const spatialTokens = multiLayerMerge(z, target);
    z.dispose();
    return { spatialTokens };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function int64(data: ArrayLike<number>, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(Array.from(data), (v) => BigInt(v)), dims);
}
