import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '@bvllm/core';
import { GradientAccumulator, clipGradNorm } from './gradients.js';

beforeAll(async () => {
  await initBackend();
});

describe('clipGradNorm (torch clip_grad_norm_)', () => {
  it('reports the global 2-norm and scales by maxNorm / (norm + 1e-6) when above', () => {
    // Global norm of [3] and [4] is 5.
    const { totalNorm, grads } = clipGradNorm(
      new Map([
        ['a', tf.tensor1d([3])],
        ['b', tf.tensor1d([4])],
      ]),
      1,
    );
    expect(totalNorm).toBeCloseTo(5, 6);
    const c = 1 / (5 + 1e-6);
    expect(grads.get('a')!.dataSync()[0]).toBeCloseTo(3 * c, 6);
    expect(grads.get('b')!.dataSync()[0]).toBeCloseTo(4 * c, 6);
    for (const g of grads.values()) g.dispose();
  });

  it('leaves gradients below the threshold unchanged', () => {
    const { totalNorm, grads } = clipGradNorm(new Map([['a', tf.tensor1d([0.3, 0.4])]]), 1);
    expect(totalNorm).toBeCloseTo(0.5, 6);
    expect(Array.from(grads.get('a')!.dataSync())).toEqual([Math.fround(0.3), Math.fround(0.4)]);
    grads.get('a')!.dispose();
  });

  it('does not leak tensors', () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      const { grads } = clipGradNorm(new Map([['a', tf.tensor1d([3, 4])]]), 1);
      for (const g of grads.values()) g.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('GradientAccumulator', () => {
  it('averages micro-batch gradients by key and resets', () => {
    const acc = new GradientAccumulator();
    const g1 = new Map([['w', tf.tensor1d([1, 2])]]);
    const g2 = new Map([['w', tf.tensor1d([3, -2])]]);
    acc.add(g1);
    acc.add(g2);
    expect(acc.microBatches).toBe(2);
    const mean = acc.mean();
    expect(Array.from(mean.get('w')!.dataSync())).toEqual([2, 0]);
    expect(acc.microBatches).toBe(0);
    mean.get('w')!.dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      acc.add(g1);
      acc.add(g2);
      for (const t of acc.mean().values()) t.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    for (const t of [...g1.values(), ...g2.values()]) t.dispose();
  });
});
