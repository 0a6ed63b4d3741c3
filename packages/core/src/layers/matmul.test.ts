import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../index.js';
import { tensorGrowth } from '../memory.js';
import { matMulPlain } from './matmul.js';

beforeAll(async () => {
  await initBackend();
});

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

describe('matMulPlain', () => {
  // tfjs's own matMul (with its transpose flags and its registered gradient) is the reference.
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const)
    it(`equals tf.matMul and its gradients (transposeA ${ta}, transposeB ${tb})`, () => {
      const a = tf.randomNormal(ta ? [2, 5, 3] : [2, 3, 5], 0, 1, 'float32', 1);
      const b = tf.randomNormal(tb ? [2, 4, 5] : [2, 5, 4], 0, 1, 'float32', 2);
      const weights = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 3);
      const loss = (f: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor) => (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(f(x, y), weights));
      const ours = tf.grads(loss((x, y) => matMulPlain(x, y, ta, tb)))([a, b]);
      const reference = tf.grads(loss((x, y) => tf.matMul(x, y, ta, tb)))([a, b]);
      expect(maxDiff(matMulPlain(a, b, ta, tb), tf.matMul(a, b, ta, tb))).toBeLessThan(1e-5);
      expect(maxDiff(ours[0], reference[0])).toBeLessThan(1e-5);
      expect(maxDiff(ours[1], reference[1])).toBeLessThan(1e-5);
      tf.dispose([a, b, weights, ...ours, ...reference]);
    });

  it('sums the gradient of a broadcast operand back to its shape, and leaks nothing', () => {
    const a = tf.randomNormal([3, 4, 5], 0, 1, 'float32', 4);
    const w = tf.randomNormal([5, 2], 0, 1, 'float32', 5);
    const [, dw] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(matMulPlain(x, y)))([a, w]);
    // d/dw Σ a·w = Σ over batch and rows of aᵀ·1.
    const expected = tf.tidy(() => tf.tile(tf.reshape(tf.sum(a, [0, 1]), [5, 1]), [1, 2]));
    expect(dw.shape).toEqual([5, 2]);
    expect(maxDiff(dw, expected)).toBeLessThan(1e-4);
    const wT = tf.transpose(w);
    expect(tensorGrowth(() => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(matMulPlain(x, y, false, true)))([a, wT]))).toBe(0);
    tf.dispose([a, w, wT, dw, expected]);
  });
});
