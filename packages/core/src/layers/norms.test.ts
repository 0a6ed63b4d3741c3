import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../backend.js';
import { tensorGrowth } from '../memory.js';
import { ParameterStore } from '../parameter-store.js';
import { Rng } from '../random.js';
import { LayerNorm, layerNorm, RMSNorm, rmsNorm } from './norms.js';

beforeAll(async () => {
  await initBackend();
});

const close = (t: tf.Tensor, expected: number[], digits = 5) =>
  Array.from(t.dataSync()).forEach((v, i) => expect(v, `index ${i}`).toBeCloseTo(expected[i], digits));

describe('layerNorm', () => {
  it('normalises over the last axis with biased variance (hand-computed)', () => {
    // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25, so (x − 2.5)/√1.25 = ±0.4472136, ±1.3416408.
    const y = layerNorm(tf.tensor2d([[1, 2, 3, 4]]), tf.tensor1d([1, 2, 1, 1]), tf.tensor1d([0, 0, 1, 0]), 0);
    close(y, [-1.3416408, -0.8944272, 1.4472136, 1.3416408]);
  });

  it('eps sits inside the square root', () => {
    // A constant row has variance 0, so the output is the bias; [1, 3] has variance 1, so with eps 1 it is (x − 2)/√2.
    close(layerNorm(tf.tensor2d([[5, 5]]), tf.ones([2]), tf.tensor1d([0.25, -1]), 1e-5), [0.25, -1]);
    close(layerNorm(tf.tensor2d([[1, 3]]), tf.ones([2]), tf.zeros([2]), 1), [-1 / Math.sqrt(2), 1 / Math.sqrt(2)]);
  });

  it('LayerNorm starts as the identity normaliser and does not leak', () => {
    const store = new ParameterStore('m', Rng.fromSeed(0));
    const ln = new LayerNorm(store, 'ln', 4, 1e-12);
    expect(store.keys()).toEqual(['ln.weight', 'ln.bias']);
    close(ln.apply(tf.tensor2d([[1, 2, 3, 4]])), [-1.3416408, -0.4472136, 0.4472136, 1.3416408]);
    const x = tf.ones([3, 4]);
    expect(tensorGrowth(() => ln.apply(x))).toBe(0);
    x.dispose();
    store.dispose();
  });
});

describe('rmsNorm', () => {
  it('divides by the root mean square (hand-computed)', () => {
    // [3, 4]: mean square 12.5, rms 3.5355339; weight [2, 1].
    close(rmsNorm(tf.tensor2d([[3, 4]]), tf.tensor1d([2, 1]), 0), [1.6970563, 1.1313708]);
    // eps inside the root: [1, 1] with eps 2 → 1/√3.
    close(rmsNorm(tf.tensor2d([[1, 1]]), tf.ones([2]), 2), [1 / Math.sqrt(3), 1 / Math.sqrt(3)]);
  });

  it('RMSNorm has one weight key and does not leak', () => {
    const store = new ParameterStore('m', Rng.fromSeed(0));
    const norm = new RMSNorm(store, 'input_layernorm', 2, 1e-6);
    expect(store.keys()).toEqual(['input_layernorm.weight']);
    close(norm.apply(tf.tensor3d([[[3, 4]]])), [0.8485281, 1.1313708]);
    const x = tf.ones([2, 3, 2]);
    expect(tensorGrowth(() => norm.apply(x))).toBe(0);
    x.dispose();
    store.dispose();
  });
});
