import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../backend.js';
import { tensorGrowth } from '../memory.js';
import { activation, gelu, geluTanh, quickGelu, silu } from './activations.js';

beforeAll(async () => {
  await initBackend();
});

const xs = [-3, -1, -0.5, 0, 0.5, 1, 2];
const run = (fn: (x: tf.Tensor) => tf.Tensor) => Array.from(fn(tf.tensor1d(xs)).dataSync());
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

describe('activations', () => {
  it('gelu is the exact erf form: x·Φ(x) (standard normal CDF table values)', () => {
    // Φ(−3) = 0.0013498980, Φ(−1) = 0.1586552539, Φ(−0.5) = 0.3085375387, Φ(0.5) = 0.6914624613,
    // Φ(1) = 0.8413447461, Φ(2) = 0.9772498681.
    const phi = [0.001349898, 0.1586552539, 0.3085375387, 0.5, 0.6914624613, 0.8413447461, 0.9772498681];
    run(gelu).forEach((v, i) => expect(v).toBeCloseTo(xs[i] * phi[i], 5));
  });

  it('geluTanh is the tanh approximation, distinct from the exact form', () => {
    const reference = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    run(geluTanh).forEach((v, i) => expect(v).toBeCloseTo(reference(xs[i]), 5));
    expect(run(geluTanh)[5]).toBeCloseTo(0.8411919906, 6);
    expect(Math.abs(run(geluTanh)[0] - run(gelu)[0])).toBeGreaterThan(1e-4);
  });

  it('silu is x·σ(x), quickGelu is x·σ(1.702x)', () => {
    expect(run(silu)[5]).toBeCloseTo(0.7310585786, 6);
    run(silu).forEach((v, i) => expect(v).toBeCloseTo(xs[i] * sigmoid(xs[i]), 6));
    run(quickGelu).forEach((v, i) => expect(v).toBeCloseTo(xs[i] * sigmoid(1.702 * xs[i]), 6));
  });

  it('maps Hugging Face hidden_act names and refuses unknown ones', () => {
    expect(activation('gelu')).toBe(gelu);
    expect(activation('gelu_pytorch_tanh')).toBe(geluTanh);
    expect(activation('gelu_new')).toBe(geluTanh);
    expect(activation('silu')).toBe(silu);
    expect(activation('swish')).toBe(silu);
    expect(activation('quick_gelu')).toBe(quickGelu);
    expect(() => activation('relu6')).toThrow('unsupported hidden_act "relu6"');
  });

  it('do not leak', () => {
    const x = tf.tensor1d(xs);
    for (const fn of [gelu, geluTanh, silu, quickGelu]) expect(tensorGrowth(() => fn(x)), fn.name).toBe(0);
    x.dispose();
  });
});
