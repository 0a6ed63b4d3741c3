/**
 * The temporal-merge pipeline slot (spec §1.1 (b)) as registered stage kinds: `row-cosine` (the official merge) and
 * `none` (the ablation). Both are parameter-free: no variables, and only an empty checkpoint loads.
 */
import { type FrameSelection, type MergedFrames, type Stage, StageRegistry, WeightsError, tf } from '@bvllm/core';
import {
  type NoMergeConfig,
  type RowCosineMergeConfig,
  type TokenMergeConfig,
  noMergeConfig,
  rowCosineMergeConfig,
} from './config.js';
import { checkSelection, frameOrderPermutation, mergeGroups, rowCosineMerge } from './row-cosine-merge.js';

/** A temporal-merge stage: FrameSelection (selected [K, N, Cv]) → MergedFrames (merged [K', N, Cv]). */
export type TokenMergeStage = Stage<TokenMergeConfig, FrameSelection, MergedFrames>;

abstract class ParameterFreeStage<Config extends TokenMergeConfig> {
  constructor(readonly config: Readonly<Config>) {}

  get kind(): Config['kind'] {
    return this.config.kind;
  }

  variables(): ReadonlyMap<string, tf.Variable> {
    return new Map();
  }

  loadWeights(tensors: ReadonlyMap<string, tf.Tensor>): void {
    if (tensors.size > 0) throw new WeightsError(`token-merge "${this.config.kind}"`, [], [...tensors.keys()], []);
  }

  dispose(): void {}
}

/** The official merge: de-duplicates queries by row cosine of frameWeights with threshold γ (spec §1.1 (b)). */
class RowCosineMergeStage extends ParameterFreeStage<RowCosineMergeConfig> implements TokenMergeStage {
  apply(input: FrameSelection): MergedFrames {
    return rowCosineMerge(input, this.config);
  }
}

/** Keeps every query (groups of one), only reordered as D3 asks (spec §5 ablation, §10 D3). */
class NoMergeStage extends ParameterFreeStage<NoMergeConfig> implements TokenMergeStage {
  apply(input: FrameSelection): MergedFrames {
    const [K] = checkSelection(input);
    const groups = Array.from({ length: K }, (_, q) => [q]);
    return mergeGroups(input, groups, frameOrderPermutation(groups, input.frameIndices, this.config.order));
  }
}

/** The `token-merge` slot's kinds; `tokenMergeRegistry.create({ kind: 'row-cosine' }, deps)` builds one. */
export const tokenMergeRegistry = new StageRegistry<TokenMergeStage>('token-merge')
  .register<RowCosineMergeConfig>('row-cosine', {
    schema: rowCosineMergeConfig,
    create: (config) => new RowCosineMergeStage(config),
    description: 'mean-merge queries whose frame-weight rows have cosine similarity above γ (official, spec §1.1 b)',
  })
  .register<NoMergeConfig>('none', {
    schema: noMergeConfig,
    create: (config) => new NoMergeStage(config),
    description: 'keep every selected frame (ablation, spec §5)',
  });
