import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors.js';
import { Rng } from './random.js';
import { randomSource, type RandomEntry } from './weight-source-random.js';
import { WeightSourceError } from './weight-source-error.js';

const entries: RandomEntry[] = [
  { key: 'a.weight', shape: [4, 3], init: 'normal' },
  { key: 'b.weight', shape: [5], init: 'normal', std: 1 },
  { key: 'ln.weight', shape: [3], init: 'ones' },
  { key: 'a.bias', shape: [4], init: 'zeros' },
];

describe('randomSource', () => {
  it('fills normal (std 0.02 by default), ones and zeros, with F32 info', () => {
    const source = randomSource(entries, 7);
    expect(source.keys()).toEqual(['a.weight', 'b.weight', 'ln.weight', 'a.bias']);
    expect(source.info('a.weight')).toEqual({ dtype: 'F32', shape: [4, 3] });
    expect(source.read('a.weight')).toEqual(Float32Array.from(Rng.fromSeed(7).fork('a.weight').normalArray(12), (v) => v * 0.02));
    expect(source.read('b.weight')).toEqual(Rng.fromSeed(7).fork('b.weight').normalArray(5));
    expect(source.read('ln.weight')).toEqual(Float32Array.of(1, 1, 1));
    expect(source.read('a.bias')).toEqual(new Float32Array(4));
    expect(source.origin('a.weight')).toBe('random(normal, std 0.02, seed 7)');
  });

  it('gives a key the same values whatever was read before it, and fresh arrays each time', () => {
    const forward = randomSource(entries, 7);
    const backward = randomSource([...entries].reverse(), 7);
    const first = forward.read('a.weight');
    backward.read('b.weight');
    backward.read('b.weight');
    expect(backward.read('a.weight')).toEqual(first);
    first[0] = 99;
    expect(forward.read('a.weight')[0]).not.toBe(99);
    // Another seed, or another key of the same shape, gives other values.
    expect(randomSource(entries, 8).read('a.weight')).not.toEqual(forward.read('a.weight'));
    expect(randomSource([{ key: 'c.weight', shape: [4, 3], init: 'normal' }], 7).read('c.weight')).not.toEqual(forward.read('a.weight'));
  });

  it('names an absent key, and refuses duplicate keys and bad shapes', () => {
    expect(() => randomSource(entries, 0).read('nope')).toThrow(WeightSourceError);
    expect(() => randomSource(entries, 0).read('nope')).toThrow('no tensor named "nope"');
    expect(() => randomSource([entries[0], entries[0]], 0)).toThrow(InvalidArgumentError);
    expect(() => randomSource([{ key: 'x', shape: [1.5], init: 'zeros' }], 0)).toThrow(InvalidArgumentError);
  });
});
