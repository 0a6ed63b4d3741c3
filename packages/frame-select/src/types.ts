import type { FrameFeatures, FrameSelection, QuestionTokens, Stage, tf } from '@bvllm/core';
import type { FrameSelectConfig } from './config.js';

/** What every frame-selection kind reads. */
export interface FrameSelectInput {
  /** The encoder's output for one video: cls [T, Cv], patches [T, N, Cv]. */
  features: FrameFeatures;
  /** The question (the baselines ignore it). int32 [1, Lt] */
  question: QuestionTokens;
  /**
   * Gumbel noise to use instead of drawing from the context's generator, e.g. a reference run's. [K, T].
   * Used wherever noise would be drawn (training, or `inferenceNoise: 'gumbel'`); ignored otherwise.
   */
  gumbelNoise?: tf.Tensor2D;
}

/** A frame-selection stage; `apply` returns a {@link FrameSelection} the caller owns. */
export interface FrameSelectStage<C extends FrameSelectConfig = FrameSelectConfig> extends Stage<C, FrameSelectInput, FrameSelection> {
  /** Frames it will select for a video of T frames (K, or T for `all`). */
  outputFrames(numFrames: number): number;
}
