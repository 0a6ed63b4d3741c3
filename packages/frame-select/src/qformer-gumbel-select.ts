/**
 * B-VLLM's text-conditioned frame selection (spec §1.1 (a), `bvlm_arch.py:429-459`):
 *   Hq = QFormer_t(question, queries = Qt[:K], encoder states = the T frame features)[:, :K]   [K, Cq]
 *   S  = Wp(Hq) · featᵀ · scale                                                               [K, T]
 *   W  = softmax((S + G) / τ) over frames                                                     [K, T]
 *   X  = W · LN_t(patches)                                                                    [K, N, Cv]
 * Parameter keys are the official module names, so a B-VLLM checkpoint loads after `temporal-keys.ts`.
 */
import {
  ConfigError,
  InvalidArgumentError,
  LayerNorm,
  Linear,
  ParameterStore,
  StoreBackedStage,
  QFormer,
  assertShape,
  matMulPlain,
  tf,
  type FrameSelection,
  type StageContext,
  type StageDependencies,
} from '@bvllm/core';
import type { QFormerGumbelConfig } from './config.js';
import { checkFrameFeatures, selectFrames } from './frame-features.js';
import { frameWeightsFromScores } from './gumbel-softmax.js';
import type { FrameSelectInput, FrameSelectStage } from './types.js';

/** Reads Cv from the neighbouring stages' dims (the vision encoder fixes it). */
export function visionWidthOf(deps: StageDependencies, slot: string): number {
  const cv = deps.dims.Cv;
  if (!Number.isInteger(cv) || cv <= 0) throw new ConfigError(`${slot}: dims.Cv (vision width) must be a positive integer, got ${String(cv)}`, ['dims', 'Cv']);
  return cv;
}

export class QFormerGumbelSelect extends StoreBackedStage implements FrameSelectStage<QFormerGumbelConfig> {
  readonly kind = 'qformer-gumbel';
  /** Cv, the vision width. */
  readonly visionWidth: number;
  /** `vlm_att_query_temporal` [1, numQueryTokens, Cq]; the first K rows are the selection queries. */
  private readonly queries: tf.Variable;
  private readonly qformer: QFormer;
  /** `vlm_att_ln_temporal` (LAVIS `ln_vision`), applied to patches only: [CLS] stays raw (D10). */
  private readonly norm: LayerNorm;
  /** `vlm_att_projector_temporal`, Cq → Cv, so queries can be scored against frame features. */
  private readonly projector: Linear;

  constructor(
    readonly config: Readonly<QFormerGumbelConfig>,
    deps: StageDependencies,
  ) {
    super(new ParameterStore('frame-select', deps.rng));
    this.visionWidth = visionWidthOf(deps, 'frame-select');
    const q = config.qformer;
    // InstructBLIP initialises query_tokens from N(0, initializer_range = 0.02).
    this.queries = this.store.create('vlm_att_query_temporal', [1, config.numQueryTokens, q.hiddenSize], { kind: 'normal', std: 0.02 });
    this.qformer = new QFormer(this.store, 'vlm_att_encoder_temporal.', { ...q, encoderHiddenSize: this.visionWidth });
    this.norm = new LayerNorm(this.store, 'vlm_att_ln_temporal', this.visionWidth, config.lnEps);
    this.projector = new Linear(this.store, 'vlm_att_projector_temporal', q.hiddenSize, this.visionWidth);
  }

  outputFrames(): number {
    return this.config.numQueries;
  }

  /** S `[K, T]`: the projected query outputs against each frame's feature, times the logit scale (1/√Cv by default). */
  scores(input: FrameSelectInput): tf.Tensor2D {
    const { features, question } = input;
    const { numFrames } = checkFrameFeatures(features, this.visionWidth);
    assertShape('question.inputIds', question.inputIds, [1, 'Lt']);
    const k = this.config.numQueries;
    return tf.tidy(() => {
      const frameFeature = this.selectionFeature(features.cls, features.patches); // [T, Cv]
      const hq = this.qformer.queryOutput({
        queryEmbeds: tf.slice(this.queries, [0, 0, 0], [1, k, this.config.qformer.hiddenSize]),
        inputIds: question.inputIds,
        attentionMask: question.attentionMask,
        encoderHiddenStates: tf.reshape(frameFeature, [1, numFrames, this.visionWidth]),
      });
      const qp = this.projector.apply(tf.reshape(hq, [k, this.config.qformer.hiddenSize])) as tf.Tensor2D; // [K, Cv]
      const scale = this.config.logitScale ?? 1 / Math.sqrt(this.visionWidth);
      return tf.mul(matMulPlain(qp, frameFeature, false, true), scale) as tf.Tensor2D;
    });
  }

  apply(input: FrameSelectInput, context: StageContext): FrameSelection {
    const { numFrames } = checkFrameFeatures(input.features, this.visionWidth);
    const k = this.config.numQueries;
    if (input.gumbelNoise) assertShape('gumbelNoise', input.gumbelNoise, [k, numFrames]);
    const mode = context.training ? 'gumbel' : this.config.inferenceNoise;
    const frameWeights = tf.tidy(() => {
      const scores = this.scores(input);
      // The context's generator is counter-based, so each call draws fresh noise and a seed replays a whole run (D4).
      const noise = mode === 'gumbel' ? (input.gumbelNoise ?? context.rng.gumbel([k, numFrames])) : undefined;
      return frameWeightsFromScores(scores, {
        tau: this.config.tau,
        mode,
        straightThrough: context.training && this.config.straightThrough,
        noise,
      });
    });
    return selectFrames(frameWeights, input.features, this.norm);
  }

  /** [T, Cv]: raw [CLS] (D10), or the mean / max over raw patches (spec §5 pooling ablation). */
  private selectionFeature(cls: tf.Tensor2D, patches: tf.Tensor3D): tf.Tensor2D {
    switch (this.config.selectionFeature) {
      case 'cls':
        return cls;
      case 'mean':
        return tf.mean(patches, 1) as tf.Tensor2D;
      case 'max':
        return tf.max(patches, 1) as tf.Tensor2D;
    }
  }
}

/** K larger than the stored query rows is caught by the config; this guards a hand-built config. */
export function createQFormerGumbelSelect(config: QFormerGumbelConfig, deps: StageDependencies): QFormerGumbelSelect {
  if (config.numQueries > config.numQueryTokens)
    throw new InvalidArgumentError('numQueries', `K = ${config.numQueries} exceeds the ${config.numQueryTokens} stored temporal queries`);
  return new QFormerGumbelSelect(config, deps);
}
