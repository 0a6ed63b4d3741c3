import { InvalidArgumentError, ShapeError, initBackend, tf } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { bipartiteMerge, multiLayerMerge, multiLayerMergeSchedule, planBipartiteMerge } from './bipartite-merge.js';
import { type FixtureStep, maxAbsDiff, readFixture } from './test-fixture.js';

interface TomeTest {
  input: number[][][];
  target_tokens: number;
  steps: FixtureStep[];
  after_each_step: number[][][][];
  output: number[][][];
}
interface Expected {
  Z: number[][][];
  budget_variant: { spatial_tokens_per_frame: number; steps: FixtureStep[]; Z_after_budget: number[][][] };
}

const pairs = (even: number[], odd: number[]) => even.map((a, i) => `${a}->${odd[i]}`).sort();

/** Checks our per-frame plans against the fixture's record of each step, starting from each step's own input. */
function expectStepsMatch(stepInputs: number[][][][], steps: FixtureStep[]): void {
  steps.forEach((step, s) => {
    stepInputs[s]!.forEach((frame, f) => {
      const plan = planBipartiteMerge(frame.flat(), frame.length, frame[0]!.length, step.r);
      expect(frame.length).toBe(step.t_in);
      expect(plan.unmergedEven).toEqual(step.unmerged_even_order[f]);
      expect(pairs(plan.mergedEven, plan.mergedIntoOdd)).toEqual(pairs(step.merged_even[f]!, step.merged_into_odd[f]!));
    });
  });
}

beforeAll(async () => {
  await initBackend();
});

describe('multiLayerMergeSchedule (spec §1.1 (d))', () => {
  it('halves while length // 2 > target, then removes the rest', () => {
    expect(multiLayerMergeSchedule(13, 5)).toEqual([6, 2]);
    expect(multiLayerMergeSchedule(32, 2)).toEqual([16, 8, 4, 2]);
    expect(multiLayerMergeSchedule(32, 18)).toEqual([14]);
    // r = ceil(t / 2) on an odd length merges every A token (the reference does not cap r here).
    expect(multiLayerMergeSchedule(7, 3)).toEqual([4]);
    expect(multiLayerMergeSchedule(32, 32)).toEqual([]);
    expect(multiLayerMergeSchedule(20, 36)).toEqual([]);
  });

  it('rejects a target below 1', () => {
    expect(() => multiLayerMergeSchedule(8, 0)).toThrow(InvalidArgumentError);
  });
});

describe('bipartiteMerge on hand-computed tokens (spec §1.1 (d))', () => {
  // A = {t0, t2}, B = {t1, t3}. Best B of t0 is t1 (cos ≈ 0.995), of t2 also t1 (cos ≈ 0.0995): t0 ranks first.
  const tokens = [
    [1, 0],
    [1, 0.1],
    [0, 1],
    [-1, 0],
  ];

  it('r = 1 merges the best A into its B and puts the unmerged A first', () => {
    const x = tf.tensor2d(tokens);
    const out = bipartiteMerge(x, 1);
    expect(out.shape).toEqual([3, 2]);
    expect(maxAbsDiff(out.arraySync(), [[0, 1], [1, 0.05], [-1, 0]])).toBeLessThan(1e-6);
    tf.dispose([x, out]);
  });

  it('r = 2 averages both A tokens into the shared B with a plain mean', () => {
    const x = tf.tensor2d(tokens);
    const out = bipartiteMerge(x, 2);
    expect(maxAbsDiff(out.arraySync(), [[2 / 3, 1.1 / 3], [-1, 0]])).toBeLessThan(1e-6);
    tf.dispose([x, out]);
  });

  it('r = 0 returns an equal copy the caller owns', () => {
    const x = tf.tensor2d(tokens);
    const out = bipartiteMerge(x, 0);
    expect(out).not.toBe(x);
    expect(out.shape).toEqual([4, 2]);
    expect(out.arraySync()).toEqual(x.arraySync());
    tf.dispose([x, out]);
  });

  it('throws typed errors for a wrong rank or an r outside [0, ceil(L / 2)]', () => {
    const x = tf.tensor2d(tokens);
    const flat = tf.tensor1d([1, 2, 3]);
    expect(() => bipartiteMerge(flat as unknown as tf.Tensor2D, 1)).toThrow(ShapeError);
    expect(() => bipartiteMerge(x, 3)).toThrow(InvalidArgumentError);
    expect(() => bipartiteMerge(x, -1)).toThrow(InvalidArgumentError);
    expect(() => bipartiteMerge(x, 1.5)).toThrow(InvalidArgumentError);
    // A single token has no B token to merge into.
    const single = tf.tensor2d([[1, 2]]);
    expect(() => bipartiteMerge(single, 1)).toThrow(InvalidArgumentError);
    const kept = multiLayerMerge(single, 1);
    expect(kept.arraySync()).toEqual([[1, 2]]);
    tf.dispose([x, flat, single, kept]);
  });
});

describe('ToMe merge against the bvllm-visual fixture (tome_test.json, spec §1.1 (d))', () => {
  const fixture = readFixture<TomeTest>('tome_test.json');

  it('takes the same decisions as the reference at every step', () => {
    expect(multiLayerMergeSchedule(fixture.input[0]!.length, fixture.target_tokens)).toEqual(fixture.steps.map((s) => s.r));
    expectStepsMatch([fixture.input, fixture.after_each_step[0]!], fixture.steps);
  });

  it('matches after_each_step through bipartiteMerge, batched over frames', () => {
    const x = tf.tensor3d(fixture.input);
    const first = bipartiteMerge(x, fixture.steps[0]!.r);
    const second = bipartiteMerge(first, fixture.steps[1]!.r);
    expect(first.shape).toEqual([2, 7, 8]);
    expect(maxAbsDiff(first.arraySync(), fixture.after_each_step[0])).toBeLessThan(1e-4);
    expect(maxAbsDiff(second.arraySync(), fixture.after_each_step[1])).toBeLessThan(1e-4);
    tf.dispose([x, first, second]);
  });

  it('multiLayerMerge reaches the output in one call, batched [B, L, C] and per frame [L, C]', () => {
    const x = tf.tensor3d(fixture.input);
    const out = multiLayerMerge(x, fixture.target_tokens);
    expect(out.shape).toEqual([2, 5, 8]);
    expect(maxAbsDiff(out.arraySync(), fixture.output)).toBeLessThan(1e-4);
    fixture.input.forEach((frame, f) => {
      const single = tf.tensor2d(frame);
      const merged = multiLayerMerge(single, fixture.target_tokens);
      expect(maxAbsDiff(merged.arraySync(), fixture.output[f])).toBeLessThan(1e-4);
      tf.dispose([single, merged]);
    });
    tf.dispose([x, out]);
  });

  it('reproduces the budget variant: Z [3, 6, 32] to 2 tokens per frame (expected.json)', () => {
    const expected = readFixture<Expected>('expected.json');
    const variant = expected.budget_variant;
    const z = tf.tensor3d(expected.Z);
    const out = multiLayerMerge(z, variant.spatial_tokens_per_frame);
    expect(out.shape).toEqual([3, 2, 32]);
    expect(maxAbsDiff(out.arraySync(), variant.Z_after_budget)).toBeLessThan(1e-4);
    const afterFirst = bipartiteMerge(z, variant.steps[0]!.r);
    expectStepsMatch([expected.Z, afterFirst.arraySync()], variant.steps);
    tf.dispose([z, out, afterFirst]);
  });

  it('does not leak tensors when run repeatedly', () => {
    const x = tf.tensor3d(fixture.input);
    const run = () => tf.dispose([multiLayerMerge(x, fixture.target_tokens), bipartiteMerge(x, 3), multiLayerMerge(x, 20)]);
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});
