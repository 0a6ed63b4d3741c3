import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../backend.js';
import { tensorGrowth } from '../memory.js';
import { ParameterStore } from '../parameter-store.js';
import { Rng } from '../random.js';
import { Linear, linear } from './linear.js';

beforeAll(async () => {
  await initBackend();
});

describe('linear', () => {
  // W is [out, in] as PyTorch stores it: y = x·Wᵀ + b.
  const w = [
    [1, 0],
    [0, 1],
    [1, 1],
  ];

  it('computes x·Wᵀ + b (hand-computed)', () => {
    const y = linear(tf.tensor2d([[1, 2]]), tf.tensor2d(w), tf.tensor1d([0.5, -1, 0]));
    expect(y.shape).toEqual([1, 3]);
    expect(Array.from(y.dataSync())).toEqual([1.5, 1, 3]);
  });

  it('keeps leading dims [..., in] → [..., out], bias optional', () => {
    const x = tf.tensor3d([1, 2, -3, 4], [2, 1, 2]);
    const y = linear(x, tf.tensor2d(w));
    expect(y.shape).toEqual([2, 1, 3]);
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, -3, 4, 1]);
  });

  it('Linear stores weight [out, in] and bias [out] under the prefix, with PyTorch-style bounds', () => {
    const store = new ParameterStore('m', Rng.fromSeed(0));
    const layer = new Linear(store, 'proj', 4, 3);
    expect(store.keys()).toEqual(['proj.weight', 'proj.bias']);
    expect(layer.weight.shape).toEqual([3, 4]);
    expect(Math.max(...Array.from(layer.weight.dataSync(), Math.abs))).toBeLessThanOrEqual(0.5);
    const noBias = new Linear(store, 'head', 4, 2, { bias: false, init: { kind: 'ones' }, trainable: false });
    expect(noBias.bias).toBeUndefined();
    expect(noBias.weight.trainable).toBe(false);
    const y = noBias.apply(tf.tensor2d([[1, 2, 3, 4]]));
    expect(Array.from(y.dataSync())).toEqual([10, 10]);
    store.dispose();
  });

  it('does not leak', () => {
    const store = new ParameterStore('m', Rng.fromSeed(0));
    const layer = new Linear(store, 'proj', 4, 3);
    const x = tf.ones([2, 5, 4]);
    expect(tensorGrowth(() => layer.apply(x))).toBe(0);
    x.dispose();
    store.dispose();
  });
});
