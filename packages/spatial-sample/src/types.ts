import type { MergedFrames, QuestionTokens, SpatialTokens, Stage } from '@bvllm/core';
import type { SpatialSampleConfig } from './config.js';

/** What every spatial-sampling kind reads. */
export interface SpatialSampleInput {
  /** The kept frames, LN_t-normed patches: merged [K', N, Cv] (spec §1.1 (b)). */
  merged: MergedFrames;
  /** The question, the same one frame selection saw (the baselines ignore it). int32 [1, Lt] */
  question: QuestionTokens;
  /**
   * The token budget θ for this call, in place of the config's `tokenBudget` (a caller's `max_visual_tokens`);
   * `null` keeps R tokens per frame. Only the Q-Former sampler has a budget; the baselines ignore it.
   */
  tokenBudget?: number | null;
}

/**
 * A spatial-sampling stage. Its output `spatialTokens` is `[K', R', outDim]`: R' tokens per kept frame of width
 * `outDim` (Cq for the Q-Former, Cv for the baselines), which sizes the projector's input.
 */
export interface SpatialSampleStage<C extends SpatialSampleConfig = SpatialSampleConfig> extends Stage<C, SpatialSampleInput, SpatialTokens> {
  /** Width of each output token: what the projector's first Linear takes in. */
  readonly outDim: number;
  /** R', the tokens each frame keeps when K' frames were kept and each has N patches. */
  tokensPerFrame(numFrames: number, numPatches: number): number;
}
