/**
 * The selection baselines of the ablations (spec §5): frames picked without the question, with one-hot weights.
 * Patches still go through the temporal LayerNorm, since the spatial stage expects normed patches (D10).
 */
import { LayerNorm, ParameterStore, StoreBackedStage, type FrameSelection, type StageContext, type StageDependencies } from '@bvllm/core';
import type { AllSelectConfig, UniformSelectConfig } from './config.js';
import { checkFrameFeatures, pickFrames } from './frame-features.js';
import { visionWidthOf } from './qformer-gumbel-select.js';
import type { FrameSelectInput, FrameSelectStage } from './types.js';

/**
 * VideoLLaMA2's `frame_sample(mode='uniform')`: the midpoints of K equal segments of [0, T − 1], rounded half up.
 * With T < K, frames repeat (as there); the temporal merge then folds the duplicates.
 */
export function uniformFrameIndices(numFrames: number, count: number): number[] {
  const segment = (numFrames - 1) / count;
  return Array.from({ length: count }, (_, i) => Math.round(segment * (i + 0.5) + 1e-6));
}

abstract class FixedSelect<C extends UniformSelectConfig | AllSelectConfig> extends StoreBackedStage implements FrameSelectStage<C> {
  abstract readonly kind: C['kind'];
  readonly visionWidth: number;
  /** `vlm_att_ln_temporal`, the same key as the selector's, so both load one checkpoint. */
  private readonly norm: LayerNorm;

  constructor(
    readonly config: Readonly<C>,
    deps: StageDependencies,
  ) {
    super(new ParameterStore('frame-select', deps.rng));
    this.visionWidth = visionWidthOf(deps, 'frame-select');
    this.norm = new LayerNorm(this.store, 'vlm_att_ln_temporal', this.visionWidth, config.lnEps);
  }

  abstract outputFrames(numFrames: number): number;
  protected abstract indices(numFrames: number): number[];

  apply(input: FrameSelectInput, _context: StageContext): FrameSelection {
    const { numFrames } = checkFrameFeatures(input.features, this.visionWidth);
    return pickFrames(this.indices(numFrames), input.features, this.norm);
  }
}

/** K evenly spaced frames (VideoLLaMA2-style). */
export class UniformSelect extends FixedSelect<UniformSelectConfig> {
  readonly kind = 'uniform';
  outputFrames(): number {
    return this.config.numFrames;
  }
  protected indices(numFrames: number): number[] {
    return uniformFrameIndices(numFrames, this.config.numFrames);
  }
}

/** Every frame, in time order (K = T). */
export class AllSelect extends FixedSelect<AllSelectConfig> {
  readonly kind = 'all';
  outputFrames(numFrames: number): number {
    return numFrames;
  }
  protected indices(numFrames: number): number[] {
    return Array.from({ length: numFrames }, (_, i) => i);
  }
}
