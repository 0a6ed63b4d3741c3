/**
 * The qformer spatial sampler at inference on onnxruntime-node. `run` takes plain arrays and returns Z (and V with
 * an exported projector), so a caller needs no tfjs (issue #18); `apply` is the stage contract's `apply` on top of
 * it, with the budget merge in tfjs. `openFile` needs only the spec and the exported file.
 */
import { ShapeError, assertShape, tf, type SpatialTokens, type StageContext } from '@bvllm/core';
import { createSession, ort, runSession, type ExecutionProvider, type OrtSession } from '@bvllm/onnx';
import { multiLayerMerge } from '@bvllm/token-merge';
import { tokensPerFrameUnder } from '../budget.js';
import { checkMergedFrames } from '../merged-frames.js';
import type { SpatialSampleInput } from '../types.js';
import { SPATIAL_ONNX_NAMES, type SpatialSampleSpec } from './spatial-sample-onnx.js';

export interface OrtSpatialOptions {
  threads?: number;
  executionProviders?: readonly ExecutionProvider[];
}

/** One tokenised question as plain ids (batch 1): both of length Lt, mask 1 = token, 0 = pad. */
export interface QuestionIds {
  inputIds: ArrayLike<number>;
  attentionMask: ArrayLike<number>;
}

/** What {@link OrtSpatialSample.apply} returns: the stage's output, plus the projected tokens when the graph has them. */
export interface OrtSpatialTokens extends SpatialTokens {
  /** `[K'·R, D]`, present only with an exported projector and no budget merge (N' ≥ R). */
  visualEmbeds?: tf.Tensor2D;
}

export class OrtSpatialSample {
  private constructor(
    readonly spec: SpatialSampleSpec,
    private readonly session: OrtSession,
    readonly file: string,
  ) {}

  /** A session on an exported file; `spec.projector` must say whether that file holds the projector. */
  static async openFile(spec: SpatialSampleSpec, file: string, options: OrtSpatialOptions = {}): Promise<OrtSpatialSample> {
    const session = await createSession(file, { threads: options.threads, executionProviders: options.executionProviders });
    return new OrtSpatialSample(spec, session, file);
  }

  get hasProjector(): boolean {
    return this.spec.projector !== undefined;
  }

  /**
   * N', tokens each of K' frames keeps after the budget merge; R when no merge runs (spec §1.1 (d), D12). θ is the
   * config's `tokenBudget` unless given: the merge runs after the graph, so a call may lower it.
   */
  tokensPerFrame(numFrames: number, tokenBudget: number | null = this.spec.config.tokenBudget): number {
    return tokensPerFrameUnder(tokenBudget, this.spec.config.numQueries, numFrames);
  }

  /**
   * Z `[K', R, Cq]` before any budget merge, and V `[K'·R, D]` with a projector, for one question and `merged`
   * `[K', N, Cv]` (`numFrames` = K'). When {@link tokensPerFrame} is below R, V does not apply: merge Z first.
   */
  async run(question: QuestionIds, merged: Float32Array, numFrames: number): Promise<{ spatialTokens: Float32Array; visualEmbeds?: Float32Array }> {
    const cv = this.spec.visionWidth;
    const numPatches = merged.length / (numFrames * cv);
    if (!Number.isInteger(numPatches) || numPatches === 0) throw new ShapeError('merged', [numFrames, 'N', cv], [merged.length]);
    if (question.inputIds.length !== question.attentionMask.length || question.inputIds.length === 0)
      throw new ShapeError('question.attentionMask', [1, question.inputIds.length], [1, question.attentionMask.length], 'one mask entry per token');
    const n = SPATIAL_ONNX_NAMES;
    const feeds = {
      [n.inputIds]: int64(question.inputIds),
      [n.attentionMask]: int64(question.attentionMask),
      [n.merged]: new ort.Tensor('float32', merged, [numFrames, numPatches, cv]),
    };
    const out = await runSession(this.session, feeds, this.file);
    const result = { spatialTokens: out[n.spatialTokens].data as Float32Array, visualEmbeds: out[n.visualEmbeds]?.data as Float32Array | undefined };
    for (const t of Object.values(out)) t.dispose();
    return result.visualEmbeds ? result : { spatialTokens: result.spatialTokens };
  }

  /** The stage's `apply` (budget merge in tfjs when N' < R), plus V when the graph's projector output applies. */
  async apply(input: SpatialSampleInput, _context?: StageContext): Promise<OrtSpatialTokens> {
    const { numFrames } = checkMergedFrames(input.merged, this.spec.visionWidth);
    assertShape('question.inputIds', input.question.inputIds, [1, 'Lt']);
    const question = { inputIds: await input.question.inputIds.data(), attentionMask: await input.question.attentionMask.data() };
    const out = await this.run(question, (await input.merged.merged.data()) as Float32Array, numFrames);
    const { numQueries: r, qformer } = this.spec.config;
    const z = tf.tensor3d(out.spatialTokens, [numFrames, r, qformer.hiddenSize]);
    const target = this.tokensPerFrame(numFrames, input.tokenBudget === undefined ? this.spec.config.tokenBudget : input.tokenBudget);
    if (target >= r) {
      if (!out.visualEmbeds) return { spatialTokens: z };
      const d = out.visualEmbeds.length / (numFrames * r);
      return { spatialTokens: z, visualEmbeds: tf.tensor2d(out.visualEmbeds, [numFrames * r, d]) };
    }
    const spatialTokens = multiLayerMerge(z, target);
    z.dispose();
    return { spatialTokens };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function int64(values: ArrayLike<number>): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(Array.from(values), (v) => BigInt(v)), [1, values.length]);
}
