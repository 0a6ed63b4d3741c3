import { describe, expect, it } from 'vitest';
import { BvllmError, NonFiniteWeightsError } from './errors.js';
import { randomSource } from './weight-source-random.js';
import { checkFinite, finiteSource } from './weight-source-finite.js';
import type { WeightSource } from './weight-source.js';

/** A random source with one value of one tensor replaced. */
function poisoned(key: string, index: number, value: number): WeightSource {
  const base = randomSource([{ key: 'a', shape: [4, 3], init: 'normal' }, { key: 'b', shape: [5], init: 'ones' }], 1);
  return { ...base, read: (k) => { const v = base.read(k); if (k === key) v[index] = value; return v; } };
}

describe('finiteSource', () => {
  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])('refuses a tensor holding %d, naming it and the first bad index', (bad) => {
    const source = finiteSource(poisoned('a', 7, bad));
    expect(source.read('b')).toHaveLength(5);
    let error: unknown;
    try {
      source.read('a');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NonFiniteWeightsError);
    expect(BvllmError.isInstance(error) && error.code).toBe('WEIGHTS_NON_FINITE');
    expect((error as NonFiniteWeightsError).key).toBe('a');
    expect((error as Error).message).toMatch(/tensor "a" holds 1 non-finite value\(s\) \(first: -?(NaN|Infinity) at flat index 7\)/);
  });

  it('in warn mode reports the tensor and returns its values unchanged', () => {
    const warnings: string[] = [];
    const values = finiteSource(poisoned('b', 2, Number.NaN), { nonFinite: 'warn', onWarning: (m) => warnings.push(m) }).read('b');
    expect(Number.isNaN(values[2])).toBe(true);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/tensor "b" holds 1 non-finite/);
  });

  it('counts every bad value and accepts extreme finite ones', () => {
    expect(() => checkFinite('s', 'k', Float32Array.of(3.4e38, -3.4e38, 1e-45, 0, -0))).not.toThrow();
    expect(() => checkFinite('s', 'k', Float32Array.of(1, Number.NaN, Number.NaN, Infinity))).toThrow(/holds 3 non-finite value\(s\) \(first: NaN at flat index 1\)/);
  });
});
