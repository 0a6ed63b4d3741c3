import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, initBackend, tf } from '@bvllm/core';
import { AdamW } from './adamw.js';

/** Plain-double AdamW in PyTorch's order (decay, moments, bias-corrected step), the reference for the tf version. */
function referenceAdamW(p0: number[], grads: number[][], lrs: number[], wd: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): number[] {
  const p = p0.slice();
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, i) => {
    const t = i + 1;
    const lr = lrs[i];
    for (let j = 0; j < p.length; j++) {
      p[j] *= 1 - lr * wd;
      m[j] = b1 * m[j] + (1 - b1) * g[j];
      v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
      p[j] -= (lr / (1 - b1 ** t)) * (m[j] / (Math.sqrt(v[j]) / Math.sqrt(1 - b2 ** t) + eps));
    }
  });
  return p;
}

beforeAll(async () => {
  await initBackend();
});

describe('AdamW (torch.optim.AdamW order)', () => {
  const grads = [
    [0.5, -2],
    [0.1, 0.3],
    [-1, 0.25],
    [2, -0.5],
  ];
  const lrs = [0.1, 0.05, 0.1, 0.01];

  it('first step moves each element by lr·sign(g) (bias correction makes m̂/√v̂ = g/|g|)', () => {
    const w = tf.variable(tf.tensor1d([1, 2]));
    const opt = new AdamW(new Map([['w', w]]));
    opt.update(new Map([['w', tf.tensor1d([0.5, -2])]]), 0.1);
    const got = w.dataSync();
    // |g| ≫ ε, so the update is lr · g / (|g| + ε) ≈ ±lr.
    expect(got[0]).toBeCloseTo(0.9, 6);
    expect(got[1]).toBeCloseTo(2.1, 6);
    opt.dispose();
    w.dispose();
  });

  it('matches the double-precision reference over four steps with weight decay', () => {
    const w = tf.variable(tf.tensor1d([1, -0.5]));
    const opt = new AdamW(new Map([['w', w]]), { weightDecay: 0.1 });
    grads.forEach((g, i) => opt.update(new Map([['w', tf.tensor1d(g)]]), lrs[i]));
    const expected = referenceAdamW([1, -0.5], grads, lrs, 0.1);
    const got = Array.from(w.dataSync());
    got.forEach((x, j) => expect(x).toBeCloseTo(expected[j], 6));
    expect(opt.step).toBe(4);
    opt.dispose();
    w.dispose();
  });

  it('decays before the Adam step (a zero gradient with decay only shrinks p by lr·λ·p)', () => {
    const w = tf.variable(tf.tensor1d([2, -4]));
    const opt = new AdamW(new Map([['w', w]]), { weightDecay: 0.5 });
    opt.update(new Map([['w', tf.zeros([2])]]), 0.1);
    expect(Array.from(w.dataSync())).toEqual([Math.fround(2 * 0.95), Math.fround(-4 * 0.95)]);
    opt.dispose();
    w.dispose();
  });

  it('exempts keys outside the decay filter and leaves parameters without a gradient alone', () => {
    const a = tf.variable(tf.tensor1d([1, 1]));
    const b = tf.variable(tf.tensor1d([3, 3]));
    const opt = new AdamW(
      new Map([
        ['a.weight', a],
        ['a.bias', b],
      ]),
      { weightDecay: 0.5, decay: (k) => !k.endsWith('.bias') },
    );
    opt.update(new Map([['a.bias', tf.zeros([2])]]), 0.1);
    expect(Array.from(b.dataSync())).toEqual([3, 3]);
    expect(Array.from(a.dataSync())).toEqual([1, 1]);
    opt.dispose();
    a.dispose();
    b.dispose();
  });

  it('state() / loadState() resume to the same trajectory', () => {
    const w1 = tf.variable(tf.tensor1d([1, -0.5]));
    const straight = new AdamW(new Map([['w', w1]]), { weightDecay: 0.1 });
    grads.forEach((g, i) => straight.update(new Map([['w', tf.tensor1d(g)]]), lrs[i]));

    const w2 = tf.variable(tf.tensor1d([1, -0.5]));
    const first = new AdamW(new Map([['w', w2]]), { weightDecay: 0.1 });
    grads.slice(0, 2).forEach((g, i) => first.update(new Map([['w', tf.tensor1d(g)]]), lrs[i]));
    const saved = first.state();
    first.dispose();
    const second = new AdamW(new Map([['w', w2]]), { weightDecay: 0.1 });
    second.loadState(saved);
    grads.slice(2).forEach((g, i) => second.update(new Map([['w', tf.tensor1d(g)]]), lrs[i + 2]));
    expect(Array.from(w2.dataSync())).toEqual(Array.from(w1.dataSync()));
    expect(second.step).toBe(4);
    for (const t of [...saved.expAvg.values(), ...saved.expAvgSq.values()]) t.dispose();
    for (const x of [straight, second, w1, w2]) x.dispose();
  });

  it('rejects a gradient for an unknown key and a state with a missing key', () => {
    const w = tf.variable(tf.tensor1d([1]));
    const opt = new AdamW(new Map([['w', w]]));
    expect(() => opt.update(new Map([['x', tf.tensor1d([1])]]), 0.1)).toThrow(InvalidArgumentError);
    expect(() => opt.loadState({ step: 1, expAvg: new Map(), expAvgSq: new Map() })).toThrow(/missing key w/);
    opt.dispose();
    w.dispose();
  });

  it('does not leak tensors over repeated updates', () => {
    const w = tf.variable(tf.tensor1d([1, 2]));
    const opt = new AdamW(new Map([['w', w]]), { weightDecay: 0.01 });
    const g = tf.tensor1d([0.1, -0.2]);
    const grad = new Map([['w', g]]);
    opt.update(grad, 0.1);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) opt.update(grad, 0.1);
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
    g.dispose();
    w.dispose();
  });
});
