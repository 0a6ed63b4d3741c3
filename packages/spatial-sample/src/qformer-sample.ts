/**
 * B-VLLM's text-conditioned spatial sampling (spec §1.1 (c), (d), `bvlm_arch.py:464-529`):
 *   Z  = QFormer_s(question ×K', queries = Qs ×K', encoder states = merged)[:, :R]     [K', R, Cq]
 *   Z  = multi_layer_merge(Z, N')   only when N' < R (the budget θ, D12)             [K', N', Cq]
 * Each kept frame is one batch row, so frames never see each other here.
 */
import { ParameterStore, QFormer, StoreBackedStage, assertShape, tf, type SpatialTokens, type StageContext, type StageDependencies } from '@bvllm/core';
import { multiLayerMerge } from '@bvllm/token-merge';
import { tokensPerFrameUnder } from './budget.js';
import type { QFormerSampleConfig } from './config.js';
import { checkMergedFrames, visionWidthOf } from './merged-frames.js';
import type { SpatialSampleInput, SpatialSampleStage } from './types.js';

export class QFormerSample extends StoreBackedStage implements SpatialSampleStage<QFormerSampleConfig> {
  readonly kind = 'qformer';
  /** Cq: the projector takes the Q-Former's width. */
  readonly outDim: number;
  readonly visionWidth: number;
  /** `vlm_att_query_spatial` [1, R, Cq]. */
  private readonly queries: tf.Variable;
  private readonly qformer: QFormer;

  constructor(
    readonly config: Readonly<QFormerSampleConfig>,
    deps: StageDependencies,
  ) {
    super(new ParameterStore('spatial-sample', deps.rng));
    this.visionWidth = visionWidthOf(deps.dims);
    this.outDim = config.qformer.hiddenSize;
    // InstructBLIP initialises query_tokens from N(0, initializer_range = 0.02).
    this.queries = this.store.create('vlm_att_query_spatial', [1, config.numQueries, this.outDim], { kind: 'normal', std: 0.02 });
    // The official model also builds `vlm_att_ln_spatial` but never calls it (spec §7.10), so it is not ported.
    this.qformer = new QFormer(this.store, 'vlm_att_encoder_spatial.', { ...config.qformer, encoderHiddenSize: this.visionWidth });
  }

  /** N' for K' = `numFrames` under θ (default the config's `tokenBudget`). */
  tokensPerFrame(numFrames: number, _numPatches?: number, tokenBudget: number | null = this.config.tokenBudget): number {
    return tokensPerFrameUnder(tokenBudget, this.config.numQueries, numFrames);
  }

  /** The spatial Q-Former's query outputs before any budget merge: `[K', R, Cq]`. */
  queryOutput(input: SpatialSampleInput): tf.Tensor3D {
    const { merged, question } = input;
    const { numFrames } = checkMergedFrames(merged, this.visionWidth);
    assertShape('question.inputIds', question.inputIds, [1, 'Lt']);
    return tf.tidy(() =>
      this.qformer.queryOutput({
        queryEmbeds: this.queries,
        // The same question conditions every frame (spec §1.1 (c): `ids[:1].repeat(k', 1)`).
        inputIds: tf.tile(question.inputIds, [numFrames, 1]),
        attentionMask: tf.tile(question.attentionMask, [numFrames, 1]),
        encoderHiddenStates: merged.merged,
      }),
    );
  }

  apply(input: SpatialSampleInput, _context: StageContext): SpatialTokens {
    const z = this.queryOutput(input);
    const target = this.tokensPerFrame(z.shape[0], undefined, input.tokenBudget === undefined ? this.config.tokenBudget : input.tokenBudget);
    if (target >= this.config.numQueries) return { spatialTokens: z };
    const spatialTokens = multiLayerMerge(z, target);
    z.dispose();
    return { spatialTokens };
  }
}
