/**
 * Temporal de-duplication of selected frames (spec §1.1 (b); `merge.py:37-112` `threshold_soft_matching`,
 * `bvlm_arch.py:40-50, 461`). Queries that chose (nearly) the same frames have near-parallel rows of frameWeights;
 * each such query is mean-merged into its most similar earlier query.
 *
 * The decisions are taken on the frameWeights values without gradient (the reference runs them under `no_grad` on a
 * detached copy), then the output is a fixed average of rows of `selected`, so training still flows into `selected`.
 */
import { type FrameSelection, type MergedFrames, ShapeError, assertShape, matMulPlain, tf } from '@bvllm/core';
import type { FrameOrder } from './config.js';

/** Every decision of one temporal merge, with the reference's names (they match the bvllm-visual fixture). */
export interface RowCosinePlan {
  /** sim[i, j] = (cos(W_i, W_j) + 1) / 2 for j < i, 0 elsewhere (`tril(sim, diagonal=-1)`). Row-major [K, K]. */
  similarity: Float64Array;
  /** m_i = max_j sim[i, j]; 0 for row 0. Length K. */
  nodeMax: Float64Array;
  /** d_i = argmax_j sim[i, j] (first on ties, as torch); 0 for row 0. Length K. */
  nodeIdx: Int32Array;
  /** Queries with m_i > γ, ascending; each is averaged into `mergedDst` at the same position and then dropped. */
  mergedSrc: number[];
  /** d_i of each of `mergedSrc`. */
  mergedDst: number[];
  /** Queries with m_i ≤ γ, ascending (query order). */
  kept: number[];
  /** For each of `kept`, itself first, then the queries averaged into it, ascending. */
  groups: number[][];
  /**
   * Merged queries whose target was itself merged away (spec §1.1 (b) edge case (i)): the reference averages raw rows
   * one level deep only, so their features reach no output row.
   */
  lost: number[];
}

/**
 * Plans the merge from frameWeights W ([K, T], row-major values) and threshold γ: query i merges into d_i iff
 * m_i > γ (strict). Cosines divide by max(|W_i||W_j|, 1e-8), as `F.cosine_similarity`'s eps.
 */
export function planRowCosineMerge(frameWeights: ArrayLike<number>, numQueries: number, numFrames: number, threshold: number): RowCosinePlan {
  const K = numQueries;
  const T = numFrames;
  const norms = new Float64Array(K);
  for (let i = 0; i < K; i++) {
    let s = 0;
    for (let t = 0; t < T; t++) s += frameWeights[i * T + t]! ** 2;
    norms[i] = Math.sqrt(s);
  }
  const similarity = new Float64Array(K * K);
  const nodeMax = new Float64Array(K);
  const nodeIdx = new Int32Array(K);
  for (let i = 1; i < K; i++) {
    nodeMax[i] = -Infinity;
    for (let j = 0; j < i; j++) {
      let dot = 0;
      for (let t = 0; t < T; t++) dot += frameWeights[i * T + t]! * frameWeights[j * T + t]!;
      const sim = (dot / Math.max(norms[i]! * norms[j]!, 1e-8) + 1) / 2;
      similarity[i * K + j] = sim;
      if (sim > nodeMax[i]!) {
        nodeMax[i] = sim;
        nodeIdx[i] = j;
      }
    }
  }
  const merged = Array.from({ length: K }, (_, i) => nodeMax[i]! > threshold);
  const mergedSrc: number[] = [];
  const kept: number[] = [];
  for (let i = 0; i < K; i++) (merged[i] ? mergedSrc : kept).push(i);
  const mergedDst = mergedSrc.map((i) => nodeIdx[i]!);
  const groups = kept.map((h) => [h, ...mergedSrc.filter((i) => nodeIdx[i] === h)]);
  const lost = mergedSrc.filter((i) => merged[nodeIdx[i]!]);
  return { similarity, nodeMax, nodeIdx, mergedSrc, mergedDst, kept, groups, lost };
}

/**
 * Permutation putting `groups` in the requested order (spec §10 D3): `query` keeps ascending query order; `time` sorts
 * by the argmax frame of each group's own query (its first member), stably, as `merge(..., sort=True)` would.
 */
export function frameOrderPermutation(groups: readonly (readonly number[])[], frameIndices: ArrayLike<number>, order: FrameOrder): number[] {
  const perm = groups.map((_, g) => g);
  if (order === 'time') perm.sort((a, b) => frameIndices[groups[a]![0]!]! - frameIndices[groups[b]![0]!]! || a - b);
  return perm;
}

/** Checks a FrameSelection's tensors and arrays agree on K; returns [K, T, N, Cv]. */
export function checkSelection(selection: FrameSelection): [number, number, number, number] {
  assertShape('frameWeights', selection.frameWeights, ['K', 'T']);
  const [K, T] = selection.frameWeights.shape;
  assertShape('selected', selection.selected, [K, 'N', 'Cv']);
  if (selection.frameIndices.length !== K) throw new ShapeError('frameIndices', [K], [selection.frameIndices.length]);
  if (selection.timestampsSec.length !== K) throw new ShapeError('timestampsSec', [K], [selection.timestampsSec.length]);
  return [K, T, selection.selected.shape[1], selection.selected.shape[2]];
}

/**
 * Builds MergedFrames from groups of query indices, each output row the plain mean of its group's rows of `selected`
 * (`merge_wavg` with sizes 1, spec §1.1 (b) edge case (iii)), in the given group order, as one [K', K] averaging
 * matrix times selected [K, N·Cv]. Measured on WASM (bench/row-cosine.mjs), that single matMul beats splitting
 * `selected` into rows and re-stacking them several times over, since every row split allocates; tf.gather is no
 * faster there, and its gradient needs UnsortedSegmentSum, which the WASM backend lacks.
 */
export function mergeGroups(selection: FrameSelection, groups: readonly (readonly number[])[], perm: readonly number[]): MergedFrames {
  const [K, , N, Cv] = checkSelection(selection);
  const ordered = perm.map((g) => groups[g]!);
  const heads = ordered.map((group) => group[0]!);
  const matrix = new Float32Array(ordered.length * K);
  ordered.forEach((group, row) => group.forEach((q) => (matrix[row * K + q] = 1 / group.length)));
  const merged = tf.tidy(() => {
    const flat = tf.reshape(selection.selected, [K, N * Cv]);
    return tf.reshape(matMulPlain(tf.tensor2d(matrix, [ordered.length, K]), flat), [ordered.length, N, Cv]) as tf.Tensor3D;
  });
  return {
    merged,
    groups: ordered.map((group) => [...group]),
    frameIndices: Int32Array.from(heads, (q) => selection.frameIndices[q]!),
    timestampsSec: heads.map((q) => selection.timestampsSec[q]!),
  };
}

/**
 * The official temporal merge with threshold γ (spec §1.1 (b)): selected [K, N, Cv] → merged [K', N, Cv], K' ≤ K, in
 * the order D3 asks for. Reads frameWeights [K, T] back to the CPU (the decisions are discrete). The result's
 * tensors are new and owned by the caller.
 */
export function rowCosineMerge(selection: FrameSelection, options: { mergeThreshold: number; order: FrameOrder }): MergedFrames {
  const [K, T] = checkSelection(selection);
  const plan = planRowCosineMerge(selection.frameWeights.dataSync(), K, T, options.mergeThreshold);
  return mergeGroups(selection, plan.groups, frameOrderPermutation(plan.groups, selection.frameIndices, options.order));
}
