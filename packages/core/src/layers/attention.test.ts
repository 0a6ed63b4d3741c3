import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../backend.js';
import { tensorGrowth } from '../memory.js';
import { Rng } from '../random.js';
import { attention, causalBias, mergeHeads, paddingBias, repeatKvHeads, splitHeads } from './attention.js';

beforeAll(async () => {
  await initBackend();
});

const [B, H, Hkv, Lq, Lk, d] = [2, 4, 2, 3, 5, 4];

/** A plain-loop reference: masked keys are skipped outright, query head h reads KV head ⌊h / (H/Hkv)⌋ (HF repeat_kv). */
function naiveAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  allowed: (b: number, i: number, j: number) => boolean,
): Float64Array {
  const out = new Float64Array(B * H * Lq * d);
  const groups = H / Hkv;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / groups);
      for (let i = 0; i < Lq; i++) {
        const scores: number[] = [];
        for (let j = 0; j < Lk; j++) {
          if (!allowed(b, i, j)) {
            scores.push(-Infinity);
            continue;
          }
          let s = 0;
          for (let c = 0; c < d; c++) s += q[((b * H + h) * Lq + i) * d + c] * k[((b * Hkv + hk) * Lk + j) * d + c];
          scores.push(s / Math.sqrt(d));
        }
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const z = e.reduce((a, x) => a + x, 0);
        for (let c = 0; c < d; c++) {
          let acc = 0;
          for (let j = 0; j < Lk; j++) acc += (e[j] / z) * v[((b * Hkv + hk) * Lk + j) * d + c];
          out[((b * H + h) * Lq + i) * d + c] = acc;
        }
      }
    }
  return out;
}

function inputs() {
  const rng = Rng.fromSeed(42);
  const q = rng.normalArray(B * H * Lq * d);
  const k = rng.normalArray(B * Hkv * Lk * d);
  const v = rng.normalArray(B * Hkv * Lk * d);
  return { q, k, v, tq: tf.tensor4d(q, [B, H, Lq, d]), tk: tf.tensor4d(k, [B, Hkv, Lk, d]), tv: tf.tensor4d(v, [B, Hkv, Lk, d]) };
}

const expectClose = (actual: tf.Tensor, expected: Float64Array) =>
  Array.from(actual.dataSync()).forEach((x, i) => expect(Math.abs(x - expected[i]), `index ${i}`).toBeLessThan(1e-5));

describe('attention', () => {
  it('GQA without a mask matches the naive loop', () => {
    const { q, k, v, tq, tk, tv } = inputs();
    const out = attention(tq, tk, tv);
    expect(out.shape).toEqual([B, H, Lq, d]);
    expectClose(out, naiveAttention(q, k, v, () => true));
  });

  it('padding and causal masks together match the naive loop', () => {
    const { q, k, v, tq, tk, tv } = inputs();
    // Batch 1 pads its last two keys; queries are the last Lq of Lk positions, so query i sees keys ≤ Lk − Lq + i.
    const mask = tf.tensor2d([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], [B, Lk], 'int32');
    const bias = tf.add(paddingBias(mask), causalBias(Lq, Lk));
    const out = attention(tq, tk, tv, { bias });
    const allowed = (b: number, i: number, j: number) => j <= Lk - Lq + i && (b === 0 || j < 3);
    expectClose(out, naiveAttention(q, k, v, allowed));
  });

  it('a custom scale replaces 1/√d', () => {
    const { tq, tk, tv } = inputs();
    const doubled = attention(tf.mul(tq, 2), tk, tv);
    const scaled = attention(tq, tk, tv, { scale: 2 / Math.sqrt(d) });
    Array.from(scaled.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(doubled.dataSync()[i], 5));
  });

  it('a fully padded row stays finite (uniform over keys)', () => {
    const { tq, tk, tv, v } = inputs();
    const out = attention(tq, tk, tv, { bias: paddingBias(tf.zeros([B, Lk])) });
    const values = out.dataSync();
    expect(values.every(Number.isFinite)).toBe(true);
    // Uniform weights: output = mean of V over keys, for batch 0, query head 0 (KV head 0), channel 0.
    let mean = 0;
    for (let j = 0; j < Lk; j++) mean += v[j * d] / Lk;
    expect(values[0]).toBeCloseTo(mean, 5);
  });

  it('refuses a head count that is not a multiple of the KV heads', () => {
    expect(() => attention(tf.zeros([1, 3, 1, 2]), tf.zeros([1, 2, 1, 2]), tf.zeros([1, 2, 1, 2]))).toThrow(
      'attention: 3 query heads are not a multiple of 2 KV heads',
    );
  });

  it('does not leak', () => {
    const { tq, tk, tv } = inputs();
    const bias = causalBias(Lq, Lk);
    expect(tensorGrowth(() => attention(tq, tk, tv, { bias }))).toBe(0);
    tf.dispose([tq, tk, tv, bias]);
  });
});

describe('masks and head layout', () => {
  it('causalBias lets query i see keys up to Lk − Lq + i', () => {
    const bias = Array.from(causalBias(2, 4).dataSync());
    expect(bias).toEqual([0, 0, 0, -1e9, 0, 0, 0, 0]);
    expect(causalBias(2, 4).shape).toEqual([1, 1, 2, 4]);
  });

  it('paddingBias is 0 where kept and −1e9 where padded, as [B, 1, 1, Lk]', () => {
    const bias = paddingBias(tf.tensor2d([[1, 0, 1]], [1, 3], 'int32'));
    expect(bias.shape).toEqual([1, 1, 1, 3]);
    // −0 where kept (0 · −1e9); it adds like 0.
    expect(Array.from(bias.dataSync(), (b) => b + 0)).toEqual([0, -1e9, 0]);
  });

  it('splitHeads puts channel h·d + c of position l at [b, h, l, c]; mergeHeads inverts it', () => {
    const x = tf.tensor3d(Array.from({ length: 12 }, (_, i) => i), [1, 2, 6]);
    const split = splitHeads(x, 2);
    expect(split.shape).toEqual([1, 2, 2, 3]);
    expect(Array.from(split.dataSync())).toEqual([0, 1, 2, 6, 7, 8, 3, 4, 5, 9, 10, 11]);
    expect(Array.from(mergeHeads(split).dataSync())).toEqual(Array.from(x.dataSync()));
  });

  it('repeatKvHeads gives each KV head to consecutive query heads', () => {
    const x = tf.tensor4d([1, 2], [1, 2, 1, 1]);
    expect(Array.from(repeatKvHeads(x, 3).dataSync())).toEqual([1, 1, 1, 2, 2, 2]);
    const same = repeatKvHeads(x, 1);
    expect(same).not.toBe(x);
    expect(Array.from(same.dataSync())).toEqual([1, 2]);
  });

  it('do not leak', () => {
    const x = tf.ones([2, 3, 8]);
    const mask = tf.ones([2, 3]);
    const kv = tf.ones([2, 2, 3, 4]);
    for (const [name, fn] of [
      ['splitHeads', () => splitHeads(x, 2)],
      ['mergeHeads', () => tf.tidy(() => mergeHeads(splitHeads(x, 2)))],
      ['paddingBias', () => paddingBias(mask)],
      ['causalBias', () => causalBias(3, 5)],
      ['repeatKvHeads', () => repeatKvHeads(kv, 2)],
    ] as const)
      expect(tensorGrowth(fn), name).toBe(0);
    tf.dispose([x, mask, kv]);
  });
});
