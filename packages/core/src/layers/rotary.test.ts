import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../backend.js';
import { tensorGrowth } from '../memory.js';
import { applyRotary, rotaryTables } from './rotary.js';

beforeAll(async () => {
  await initBackend();
});

describe('rotary embeddings', () => {
  it('tables hold cos/sin of pos · θ^(−2i/d), repeated over both halves', () => {
    // d = 4, θ = 10000: inverse frequencies 1 and 10000^(−1/2) = 0.01.
    const { cos, sin } = rotaryTables([0, 1, 5], 4, 10000);
    expect(cos.shape).toEqual([3, 4]);
    const angles = [0, 0, 0, 0, 1, 0.01, 1, 0.01, 5, 0.05, 5, 0.05];
    Array.from(cos.dataSync()).forEach((c, i) => expect(c).toBeCloseTo(Math.cos(angles[i]), 6));
    Array.from(sin.dataSync()).forEach((s, i) => expect(s).toBeCloseTo(Math.sin(angles[i]), 6));
  });

  it('rotates each (x_i, x_{i+d/2}) pair by its angle (rotate-half convention)', () => {
    // One head, positions 0 and 3, d = 4, θ = 100: frequencies 1 and 0.1.
    const { cos, sin } = rotaryTables([0, 3], 4, 100);
    const x = [
      [1, 2, 3, 4],
      [0.5, -1, 2, 0.25],
    ];
    const out = applyRotary(tf.tensor4d(x.flat(), [1, 1, 2, 4]), cos, sin).dataSync();
    const expected = x.flatMap(([a0, a1, b0, b1], p) => {
      const [t0, t1] = [p * 3 * 1, p * 3 * 0.1];
      return [
        a0 * Math.cos(t0) - b0 * Math.sin(t0),
        a1 * Math.cos(t1) - b1 * Math.sin(t1),
        b0 * Math.cos(t0) + a0 * Math.sin(t0),
        b1 * Math.cos(t1) + a1 * Math.sin(t1),
      ];
    });
    Array.from(out).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
    // Position 0 is the identity.
    expect(Array.from(out.slice(0, 4))).toEqual([1, 2, 3, 4]);
  });

  it('keeps long positions accurate (angles computed in float64)', () => {
    const { cos } = rotaryTables([100_000], 2, 10000);
    expect(cos.dataSync()[0]).toBeCloseTo(Math.cos(100_000), 5);
  });

  it('does not leak', () => {
    const x = tf.ones([1, 2, 3, 4]);
    const { cos, sin } = rotaryTables([0, 1, 2], 4, 10000);
    expect(tensorGrowth(() => applyRotary(x, cos, sin))).toBe(0);
    expect(tensorGrowth(() => Object.values(rotaryTables([0, 1, 2], 4, 10000)))).toBe(0);
    tf.dispose([x, cos, sin]);
  });
});
