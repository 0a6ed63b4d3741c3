/**
 * The contract between the training loop and a model. It is structural on purpose: the pipeline's B-VLLM model, a
 * test's softmax regression and any ablation plug in by holding their parameters in one {@link ParameterStore}
 * (checkpoint keys) and returning a scalar loss. The loop owns everything else: data order, optimizer, schedule,
 * clipping, checkpoints.
 */
import type { ParameterStore, StageContext, tf } from '@bvllm/core';
import type { TrainingStage } from './training-config.js';

export interface TrainableModel<Batch> {
  /** Every parameter of the model under its checkpoint key; trainable ones are updated in place. */
  readonly store: ParameterStore;
  /**
   * The keys a stage trains (spec §2: stage 1 the frame-selection Q-Former side and projectors, stage 2 every
   * `vlm_att_*` module plus LoRA). The loop sets each variable's `trainable` flag from it, so other keys get no
   * gradient and are not saved in the stage's checkpoints.
   */
  trainable(stage: TrainingStage): (key: string) => boolean;
  /**
   * Mean next-token cross-entropy over the batch's supervised tokens (labels ≠ −100), as HF's causal-LM loss
   * (spec §2). Called inside a gradient tape: build every tensor from the batch here, and draw all noise
   * (Gumbel, dropout) from `context.rng`, which is advanced, never forked with a constant name, so a resumed run
   * draws the same noise.
   */
  loss(batch: Batch, context: StageContext): tf.Scalar;
}

/**
 * Samples by index. `get` throws for a sample it cannot produce (missing media, malformed entry, too long); the loop
 * skips and counts it, so one bad sample never stops a run.
 */
export interface TrainDataset<Sample> {
  readonly length: number;
  get(index: number): Sample;
  /** The sample's id for logs (`id` of the annotation entry); defaults to the index. */
  idOf?(index: number): string;
}
