import { type FrameSelection, ShapeError, initBackend, tf } from '@bvllm/core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { planRowCosineMerge, rowCosineMerge } from './row-cosine-merge.js';
import { maxAbsDiff, readFixture } from './test-fixture.js';

interface Expected {
  W: number[][];
  X: number[][][];
  X_merged: number[][][];
  temporal_merge: {
    sim_tril: number[][];
    node_max: number[];
    node_idx: number[];
    merged_src: number[];
    merged_dst: number[];
    kept: number[];
    groups: number[][];
    lost: number[];
    num_kept: number;
  };
  sorted_variant: { argmax_frame_of_kept: number[]; order: number[]; X_merged: number[][][] };
}

const argmax = (row: number[]) => row.reduce((best, v, i) => (v > row[best]! ? i : best), 0);

/** A FrameSelection over hand-built frameWeights; selected[k, n, c] = 100k + 10n + c so every row is recognisable. */
function selectionOf(frameWeights: number[][], selectedValues?: number[][][]): FrameSelection {
  const values = selectedValues ?? frameWeights.map((_, k) => [0, 1].map((n) => [0, 1, 2].map((c) => 100 * k + 10 * n + c)));
  const frameIndices = Int32Array.from(frameWeights, argmax);
  return {
    frameWeights: tf.tensor2d(frameWeights),
    selected: tf.tensor3d(values),
    frameIndices,
    timestampsSec: Array.from(frameIndices, (t) => t + 0.5),
  };
}

/** The plain mean of rows `members` of the values selectionOf() builds, computed independently. */
const meanOfRows = (members: number[]) => [0, 1].map((n) => [0, 1, 2].map((c) => members.reduce((s, k) => s + 100 * k + 10 * n + c, 0) / members.length));

const owned: tf.Tensor[] = [];
function track(selection: FrameSelection): FrameSelection {
  owned.push(selection.frameWeights, selection.selected);
  return selection;
}

beforeAll(async () => {
  await initBackend();
});
afterEach(() => {
  tf.dispose(owned.splice(0));
});

describe('planRowCosineMerge on hand-built frameWeights (spec §1.1 (b))', () => {
  it('edge case (i): a row merged into an earlier row is dropped, and rows merged into it are lost', () => {
    // cos(W1, W0) = 0.6 → sim 0.8 > 0.75; cos(W2, W1) = 0.64 → 0.82, cos(W2, W0) = 0 → 0.5; W3 is orthogonal to all.
    const W = [
      [1, 0, 0, 0],
      [0.6, 0.8, 0, 0],
      [0, 0.8, 0.6, 0],
      [0, 0, 0, 1],
    ];
    const plan = planRowCosineMerge(W.flat(), 4, 4, 0.75);
    expect(Array.from(plan.nodeIdx)).toEqual([0, 0, 1, 0]);
    expect(maxAbsDiff(Array.from(plan.nodeMax), [0, 0.8, 0.82, 0.5])).toBeLessThan(1e-12);
    expect(plan.mergedSrc).toEqual([1, 2]);
    expect(plan.mergedDst).toEqual([0, 1]);
    expect(plan.kept).toEqual([0, 3]);
    expect(plan.groups).toEqual([[0, 1], [3]]);
    expect(plan.lost).toEqual([2]);

    const out = rowCosineMerge(track(selectionOf(W)), { mergeThreshold: 0.75, order: 'query' });
    // Row 0 averages raw rows 0 and 1 only: row 2's features reach no output.
    expect(maxAbsDiff(out.merged.arraySync(), [meanOfRows([0, 1]), meanOfRows([3])])).toBeLessThan(1e-4);
    tf.dispose(out.merged);
  });

  it('T < K: duplicates are guaranteed and merged; `time` sorts survivors by their argmax frame', () => {
    const W = [
      [0.1, 0.9],
      [0.9, 0.1],
      [0.05, 0.95],
      [0.95, 0.05],
      [0.2, 0.8],
    ];
    const plan = planRowCosineMerge(W.flat(), 5, 2, 0.75);
    expect(plan.groups).toEqual([
      [0, 2, 4],
      [1, 3],
    ]);
    const selection = track(selectionOf(W));
    const byQuery = rowCosineMerge(selection, { mergeThreshold: 0.75, order: 'query' });
    expect(byQuery.groups).toEqual(plan.groups);
    expect(Array.from(byQuery.frameIndices)).toEqual([1, 0]);
    expect(maxAbsDiff(byQuery.merged.arraySync(), [meanOfRows([0, 2, 4]), meanOfRows([1, 3])])).toBeLessThan(1e-4);

    const byTime = rowCosineMerge(selection, { mergeThreshold: 0.75, order: 'time' });
    expect(byTime.groups).toEqual([
      [1, 3],
      [0, 2, 4],
    ]);
    expect(Array.from(byTime.frameIndices)).toEqual([0, 1]);
    expect(byTime.timestampsSec).toEqual([0.5, 1.5]);
    expect(maxAbsDiff(byTime.merged.arraySync(), [meanOfRows([1, 3]), meanOfRows([0, 2, 4])])).toBeLessThan(1e-4);
    tf.dispose([byQuery.merged, byTime.merged]);
  });

  it('all rows identical: everything merges into row 0 (first index on ties)', () => {
    const W = Array.from({ length: 4 }, () => [0.2, 0.5, 0.3]);
    const out = rowCosineMerge(track(selectionOf(W)), { mergeThreshold: 0.75, order: 'time' });
    expect(out.groups).toEqual([[0, 1, 2, 3]]);
    expect(out.merged.shape).toEqual([1, 2, 3]);
    expect(maxAbsDiff(out.merged.arraySync(), [meanOfRows([0, 1, 2, 3])])).toBeLessThan(1e-4);
    tf.dispose(out.merged);
  });

  it('K = 1: the single row is kept unchanged', () => {
    const selection = track(selectionOf([[0.3, 0.7]]));
    const out = rowCosineMerge(selection, { mergeThreshold: 0.75, order: 'time' });
    expect(out.groups).toEqual([[0]]);
    expect(out.merged.arraySync()).toEqual(selection.selected.arraySync());
    expect(Array.from(out.frameIndices)).toEqual([1]);
    tf.dispose(out.merged);
  });

  it('merges only when m_i is strictly above γ', () => {
    // Orthogonal rows: cos 0, so sim is exactly 0.5.
    const W = [
      [1, 0],
      [0, 1],
    ];
    expect(planRowCosineMerge(W.flat(), 2, 2, 0.5).kept).toEqual([0, 1]);
    expect(planRowCosineMerge(W.flat(), 2, 2, 0.49).kept).toEqual([0]);
  });

  it('rejects mismatched shapes with ShapeError', () => {
    const good = track(selectionOf([[1, 0], [0, 1]]));
    const rank3 = tf.zeros([2, 2, 1]) as unknown as tf.Tensor2D;
    const wrongK = tf.zeros([3, 2, 3]) as tf.Tensor3D;
    owned.push(rank3, wrongK);
    const options = { mergeThreshold: 0.75, order: 'time' } as const;
    expect(() => rowCosineMerge({ ...good, frameWeights: rank3 }, options)).toThrow(ShapeError);
    expect(() => rowCosineMerge({ ...good, selected: wrongK }, options)).toThrow(/selected: expected \[2, N, Cv\], got \[3, 2, 3\]/);
    expect(() => rowCosineMerge({ ...good, frameIndices: new Int32Array(3) }, options)).toThrow(ShapeError);
    expect(() => rowCosineMerge({ ...good, timestampsSec: [0] }, options)).toThrow(ShapeError);
  });
});

describe('rowCosineMerge against the bvllm-visual fixture (spec §1.1 (b), §10 D3)', () => {
  const expected = readFixture<Expected>('expected.json');
  const reference = expected.temporal_merge;

  it('reproduces every intermediate decision of the temporal merge', () => {
    const plan = planRowCosineMerge(expected.W.flat(), 4, 7, 0.75);
    expect(maxAbsDiff(Array.from(plan.similarity), reference.sim_tril.flat())).toBeLessThan(1e-9);
    expect(maxAbsDiff(Array.from(plan.nodeMax), reference.node_max)).toBeLessThan(1e-9);
    expect(Array.from(plan.nodeIdx)).toEqual(reference.node_idx);
    expect(plan.mergedSrc).toEqual(reference.merged_src);
    expect(plan.mergedDst).toEqual(reference.merged_dst);
    expect(plan.kept).toEqual(reference.kept);
    expect(plan.groups).toEqual(reference.groups);
    expect(plan.lost).toEqual(reference.lost);
  });

  it('order `query` reproduces X_merged of the official code', () => {
    const out = rowCosineMerge(track(selectionOf(expected.W, expected.X)), { mergeThreshold: 0.75, order: 'query' });
    expect(out.merged.shape).toEqual([reference.num_kept, 8, 24]);
    expect(out.groups).toEqual(reference.groups);
    expect(maxAbsDiff(out.merged.arraySync(), expected.X_merged)).toBeLessThan(1e-4);
    tf.dispose(out.merged);
  });

  it('order `time` reproduces the sorted variant', () => {
    const variant = expected.sorted_variant;
    const out = rowCosineMerge(track(selectionOf(expected.W, expected.X)), { mergeThreshold: 0.75, order: 'time' });
    expect(out.groups).toEqual(variant.order.map((g) => reference.groups[g]));
    expect(Array.from(out.frameIndices)).toEqual(variant.order.map((g) => variant.argmax_frame_of_kept[g]));
    expect(maxAbsDiff(out.merged.arraySync(), variant.X_merged)).toBeLessThan(1e-4);
    tf.dispose(out.merged);
  });

  it('does not leak tensors when run repeatedly', () => {
    const selection = track(selectionOf(expected.W, expected.X));
    const run = () => {
      tf.dispose(rowCosineMerge(selection, { mergeThreshold: 0.75, order: 'time' }).merged);
      tf.dispose(rowCosineMerge(selection, { mergeThreshold: 0.1, order: 'query' }).merged);
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) run();
    expect(tf.memory().numTensors).toBe(before);
  });
});
