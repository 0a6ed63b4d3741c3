/**
 * The merges decide on values read without gradient (spec §1.1 (b), (d): `no_grad` in the reference) but their
 * outputs are averages of their inputs, so training flows through them. These tests check the gradients.
 */
import { type FrameSelection, Rng, initBackend, tf } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { bipartiteMerge, multiLayerMerge } from './bipartite-merge.js';
import { rowCosineMerge } from './row-cosine-merge.js';
import { tokenMergeRegistry } from './token-merge-stage.js';
import { maxAbsDiff } from './test-fixture.js';

// Edge case (i) of spec §1.1 (b): row 1 merges into 0, row 2 into 1 (then lost), row 3 stays alone.
const W = [
  [1, 0, 0, 0],
  [0.6, 0.8, 0, 0],
  [0, 0.8, 0.6, 0],
  [0, 0, 0, 1],
];
const options = { mergeThreshold: 0.75, order: 'time' } as const;

function selectionFrom(frameWeights: tf.Tensor2D, selected: tf.Tensor3D): FrameSelection {
  return { frameWeights, selected, frameIndices: Int32Array.from([0, 1, 1, 3]), timestampsSec: [0, 1, 1, 3] };
}

beforeAll(async () => {
  await initBackend();
});

describe('gradients of the temporal merge (spec §1.1 (b))', () => {
  it('d sum(merged) / d selected is 1 / |group| per member and 0 for a lost row', () => {
    const frameWeights = tf.tensor2d(W);
    const selected = tf.randomNormal([4, 2, 3], 0, 1, 'float32', 1) as tf.Tensor3D;
    const grad = tf.grad((x) => tf.sum(rowCosineMerge(selectionFrom(frameWeights, x as tf.Tensor3D), options).merged))(selected);
    const perRow = [0.5, 0.5, 0, 1].map((g) => Array.from({ length: 2 }, () => [g, g, g]));
    expect(maxAbsDiff(grad.arraySync(), perRow)).toBeLessThan(1e-6);
    tf.dispose([frameWeights, selected, grad]);
  });

  it('flows back to frameWeights through selected = frameWeights · patches (checked by finite differences)', () => {
    const rng = Rng.fromSeed(3);
    const patches = tf.tensor(rng.normalArray(4 * 6), [4, 6]); // [T, N·Cv] with N = 2, Cv = 3
    const cotangent = tf.tensor(rng.normalArray(2 * 6), [2, 2, 3]); // K' = 2 kept rows
    // Linear in frameWeights while the merge decisions stay fixed, so central differences are exact up to rounding.
    const loss = (fw: tf.Tensor) => {
      const selected = tf.reshape(tf.matMul(fw, patches), [4, 2, 3]) as tf.Tensor3D;
      return tf.sum(tf.mul(rowCosineMerge(selectionFrom(fw as tf.Tensor2D, selected), options).merged, cotangent)) as tf.Scalar;
    };
    const frameWeights = tf.tensor2d(W);
    const grad = tf.grad(loss)(frameWeights).arraySync() as number[][];
    const eps = 1e-2;
    const numeric = W.map((row, k) =>
      row.map((_, t) => {
        const shifted = (delta: number) =>
          tf.tidy(() => loss(tf.tensor2d(W.map((r, i) => r.map((v, j) => (i === k && j === t ? v + delta : v))))).dataSync()[0]!);
        return (shifted(eps) - shifted(-eps)) / (2 * eps);
      }),
    );
    expect(maxAbsDiff(grad, numeric)).toBeLessThan(1e-3);
    // The lost row 2 contributes nothing, so its gradient is exactly zero.
    expect(grad[2]!.every((g) => g === 0)).toBe(true);
    tf.dispose([patches, cotangent, frameWeights]);
  });

  it('the `none` stage passes gradients through its reordering unchanged', () => {
    const stage = tokenMergeRegistry.create({ kind: 'none' }, { rng: Rng.fromSeed(0), dims: {} });
    const frameWeights = tf.tensor2d(W);
    const selected = tf.randomNormal([4, 2, 3], 0, 1, 'float32', 2) as tf.Tensor3D;
    const grad = tf.grad((x) => tf.sum(stage.apply(selectionFrom(frameWeights, x as tf.Tensor3D), { training: true, rng: Rng.fromSeed(0) }).merged))(selected);
    expect(grad.arraySync()).toEqual(tf.tidy(() => tf.onesLike(selected).arraySync()));
    tf.dispose([frameWeights, selected, grad]);
  });
});

describe('gradients of the ToMe merge (spec §1.1 (d))', () => {
  it('d sum(out) / d token is 1 / (size of its group), over several steps', () => {
    // Hand example: A = {t0, t2}, B = {t1, t3}; both A tokens' best B is t1, so r = 2 gives [(t0 + t1 + t2) / 3, t3].
    const tokens = tf.tensor2d([
      [1, 0],
      [1, 0.1],
      [0, 1],
      [-1, 0],
    ]);
    const grad = tf.grad((x) => tf.sum(bipartiteMerge(x as tf.Tensor2D, 2)))(tokens);
    expect(maxAbsDiff(grad.arraySync(), [[1 / 3, 1 / 3], [1 / 3, 1 / 3], [1 / 3, 1 / 3], [1, 1]])).toBeLessThan(1e-6);
    // 4 → 1 takes steps r = 2, then r = 1: the final token averages ((t0 + t1 + t2) / 3 + t3) / 2.
    const deep = tf.grad((x) => tf.sum(multiLayerMerge(x as tf.Tensor2D, 1)))(tokens);
    expect(maxAbsDiff(deep.arraySync(), [[1 / 6, 1 / 6], [1 / 6, 1 / 6], [1 / 6, 1 / 6], [0.5, 0.5]])).toBeLessThan(1e-6);
    tf.dispose([tokens, grad, deep]);
  });
});
