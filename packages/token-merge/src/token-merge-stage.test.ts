import { ConfigError, type FrameSelection, Rng, UnknownKindError, WeightsError, initBackend, tf } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenMergeRegistry } from './token-merge-stage.js';
import { maxAbsDiff, readFixture } from './test-fixture.js';

interface Expected {
  W: number[][];
  X: number[][][];
  X_merged: number[][][];
  temporal_merge: { groups: number[][] };
  sorted_variant: { X_merged: number[][][] };
}

const expected = readFixture<Expected>('expected.json');
const deps = { rng: Rng.fromSeed(0), dims: {} };
const context = { training: false, rng: Rng.fromSeed(0) };
let selection: FrameSelection;

beforeAll(async () => {
  await initBackend();
  const frameIndices = Int32Array.from(expected.W, (row) => row.indexOf(Math.max(...row)));
  selection = {
    frameWeights: tf.tensor2d(expected.W),
    selected: tf.tensor3d(expected.X),
    frameIndices,
    timestampsSec: Array.from(frameIndices, (t) => t),
  };
});
afterAll(() => {
  tf.dispose([selection.frameWeights, selection.selected]);
});

describe('token-merge registry (spec §1.1 (b), §10 D3)', () => {
  it('lists both kinds and fills the documented defaults', () => {
    expect(tokenMergeRegistry.kinds()).toEqual(['row-cosine', 'none']);
    expect(tokenMergeRegistry.parse({ kind: 'row-cosine' })).toEqual({ kind: 'row-cosine', mergeThreshold: 0.75, order: 'time' });
    expect(tokenMergeRegistry.parse({ kind: 'none' })).toEqual({ kind: 'none', order: 'time' });
  });

  it('rejects unknown kinds, unknown keys and out-of-range γ with typed errors', () => {
    expect(() => tokenMergeRegistry.parse({ kind: 'tome' })).toThrow(UnknownKindError);
    expect(() => tokenMergeRegistry.parse({ kind: 'row-cosine', threshold: 0.8 })).toThrow(ConfigError);
    expect(() => tokenMergeRegistry.parse({ kind: 'row-cosine', mergeThreshold: 1.5 })).toThrow(/mergeThreshold/);
    expect(() => tokenMergeRegistry.parse({ kind: 'none', order: 'random' })).toThrow(ConfigError);
  });

  it('row-cosine applies the official merge in the configured order', () => {
    const official = tokenMergeRegistry.create({ kind: 'row-cosine', order: 'query' }, deps);
    const out = official.apply(selection, context);
    expect(official.kind).toBe('row-cosine');
    expect(out.groups).toEqual(expected.temporal_merge.groups);
    expect(maxAbsDiff(out.merged.arraySync(), expected.X_merged)).toBeLessThan(1e-4);
    const sorted = tokenMergeRegistry.create({ kind: 'row-cosine' }, deps).apply(selection, context);
    expect(maxAbsDiff(sorted.merged.arraySync(), expected.sorted_variant.X_merged)).toBeLessThan(1e-4);
    tf.dispose([out.merged, sorted.merged]);
  });

  it('none with order `query` is the identity; with `time` it only sorts by argmax frame', () => {
    const identity = tokenMergeRegistry.create({ kind: 'none', order: 'query' }, deps).apply(selection, context);
    expect(identity.groups).toEqual([[0], [1], [2], [3]]);
    expect(identity.merged.arraySync()).toEqual(selection.selected.arraySync());
    expect(identity.timestampsSec).toEqual(selection.timestampsSec);

    const byTime = tokenMergeRegistry.create({ kind: 'none' }, deps).apply(selection, context);
    const order = [0, 1, 2, 3].sort((a, b) => selection.frameIndices[a]! - selection.frameIndices[b]! || a - b);
    expect(byTime.groups).toEqual(order.map((q) => [q]));
    expect(Array.from(byTime.frameIndices)).toEqual(order.map((q) => selection.frameIndices[q]));
    expect(maxAbsDiff(byTime.merged.arraySync(), order.map((q) => expected.X[q]))).toBeLessThan(1e-6);
    tf.dispose([identity.merged, byTime.merged]);
  });

  it('is parameter-free: no variables, and a non-empty checkpoint is rejected', () => {
    for (const kind of tokenMergeRegistry.kinds()) {
      const stage = tokenMergeRegistry.create({ kind }, deps);
      expect(stage.variables().size).toBe(0);
      expect(() => stage.loadWeights(new Map())).not.toThrow();
      const stray = tf.zeros([1]);
      expect(() => stage.loadWeights(new Map([['tokenMerge.gamma', stray]]))).toThrow(WeightsError);
      stray.dispose();
      stage.dispose();
    }
  });

  it('does not leak tensors when applied repeatedly', () => {
    const stages = [
      tokenMergeRegistry.create({ kind: 'row-cosine' }, deps),
      tokenMergeRegistry.create({ kind: 'none' }, deps),
      tokenMergeRegistry.create({ kind: 'none', order: 'query' }, deps),
    ];
    const run = () => stages.forEach((stage) => tf.dispose(stage.apply(selection, context).merged));
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) run();
    expect(tf.memory().numTensors).toBe(before);
  });
});
