import { Rng } from '@bvllm/core';
import { describe, expect, it } from 'vitest';
import { applyRepetitionPenalty, argmax, candidateDistribution, sampleNextToken, samplingConfig } from './sampling.js';

const logits = () => Float32Array.from([1, 3, 2, -1, 0]);
const softmax = (xs: number[]) => {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

describe('sampling (spec §3)', () => {
  it('greedy takes the first maximum', () => {
    expect(argmax([1, 5, 5, 2])).toBe(1);
    expect(sampleNextToken(logits(), [], samplingConfig.parse({}), Rng.fromSeed(0))).toBe(1);
  });

  it('repetition penalty divides positive and multiplies negative logits of seen ids, once each', () => {
    const x = logits();
    applyRepetitionPenalty(x, [1, 1, 3], 2);
    expect(Array.from(x)).toEqual([1, 1.5, 2, -2, 0]);
  });

  it('temperature rescales and top-k keeps the k best', () => {
    const { ids, probs } = candidateDistribution(logits(), { temperature: 0.5, topK: 2, topP: 1 });
    expect(ids).toEqual([1, 2]);
    const want = softmax([3 / 0.5, 2 / 0.5]);
    probs.forEach((p, i) => expect(p).toBeCloseTo(want[i], 6));
  });

  it('top-p keeps the smallest most-likely set reaching the mass', () => {
    const p = softmax([1, 3, 2, -1, 0]); // sorted: id1 0.6364, id2 0.2341, id0 0.0861, …
    const { ids } = candidateDistribution(logits(), { temperature: 1, topK: 0, topP: p[1] + p[2] - 1e-6 });
    expect(ids).toEqual([1, 2]);
    expect(candidateDistribution(logits(), { temperature: 1, topK: 0, topP: p[1] + p[2] + 1e-6 }).ids).toEqual([1, 2, 0]);
    expect(candidateDistribution(logits(), { temperature: 1, topK: 0, topP: 0.01 }).ids).toEqual([1]);
  });

  it('on a large vocabulary, pre-filtering gives the same candidates as the definition', () => {
    const rng = Rng.fromSeed(4);
    const big = Float32Array.from(rng.normalArray(5000), (v) => v * 3);
    for (const config of [
      { temperature: 1, topK: 0, topP: 0.9 },
      { temperature: 0.2, topK: 0, topP: 0.9 },
      { temperature: 1, topK: 40, topP: 1 },
      { temperature: 50, topK: 0, topP: 1 },
    ]) {
      const { ids, probs } = candidateDistribution(big, config);
      // The definition: sort everything, softmax over the top-k, cut at mass topP.
      const order = Array.from(big.keys()).sort((a, b) => big[b] - big[a]);
      const kept = config.topK > 0 ? order.slice(0, config.topK) : order;
      const w = kept.map((id) => Math.exp((big[id] - big[order[0]]) / config.temperature));
      const total = w.reduce((a, b) => a + b, 0);
      let mass = 0;
      let n = 0;
      while (n < kept.length && (n === 0 || mass < config.topP)) mass += w[n++] / total;
      expect(ids).toEqual(kept.slice(0, n));
      probs.forEach((p, i) => expect(p).toBeCloseTo(w[i] / total / mass, 6));
    }
  });

  it('draws follow the distribution and repeat for a seed', () => {
    const config = samplingConfig.parse({ doSample: true, temperature: 1, topP: 1 });
    const draw = (seed: number) => {
      const rng = Rng.fromSeed(seed);
      return Array.from({ length: 4000 }, () => sampleNextToken(logits(), [], config, rng));
    };
    const a = draw(7);
    expect(draw(7)).toEqual(a);
    const p = softmax([1, 3, 2, -1, 0]);
    for (let id = 0; id < 5; id++) {
      const freq = a.filter((t) => t === id).length / a.length;
      // 4 standard errors of a binomial proportion with n = 4000.
      expect(Math.abs(freq - p[id])).toBeLessThan(4 * Math.sqrt((p[id] * (1 - p[id])) / 4000) + 1e-3);
    }
  });

  it('rejects unknown and out-of-range options', () => {
    expect(() => samplingConfig.parse({ topP: 0 })).toThrow();
    expect(() => samplingConfig.parse({ temprature: 1 })).toThrow();
  });
});
