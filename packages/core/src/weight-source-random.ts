import { InvalidArgumentError } from './errors.js';
import { Rng } from './random.js';
import { WeightSourceError } from './weight-source-error.js';
import type { WeightSource } from './weight-source.js';

/** One seeded fill: a key, its shape, and how it starts (normal with `std`, 0.02 by default, as HF initialises). */
export interface RandomEntry {
  key: string;
  shape: number[];
  init: 'normal' | 'zeros' | 'ones';
  std?: number;
}

/**
 * Seeded fills as a WeightSource, for the modules a checkpoint does not hold (a fresh projector, a from-scratch
 * tiny model). Each key draws from its own generator, `Rng.fromSeed(seed).fork(key)`, so a key's values depend only
 * on the seed and the key, never on which other keys were read first or how many.
 */
export function randomSource(entries: readonly RandomEntry[], seed: number): WeightSource {
  const byKey = new Map<string, RandomEntry>();
  for (const e of entries) {
    if (byKey.has(e.key)) throw new InvalidArgumentError('entries', `key "${e.key}" appears twice`);
    if (!e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new InvalidArgumentError('entries', `"${e.key}" has an invalid shape [${e.shape.join(', ')}]`);
    byKey.set(e.key, e);
  }
  const root = Rng.fromSeed(seed);
  const entry = (key: string): RandomEntry => {
    const e = byKey.get(key);
    if (!e) throw new WeightSourceError('randomSource', 'missing-key', [key], `no tensor named "${key}"`);
    return e;
  };
  return {
    keys: () => [...byKey.keys()],
    has: (key) => byKey.has(key),
    info: (key) => ({ dtype: 'F32', shape: [...entry(key).shape] }),
    read: (key) => {
      const e = entry(key);
      const n = e.shape.reduce((a, b) => a * b, 1);
      if (e.init === 'zeros') return new Float32Array(n);
      if (e.init === 'ones') return new Float32Array(n).fill(1);
      const std = e.std ?? 0.02;
      const values = root.fork(key).normalArray(n);
      for (let i = 0; i < n; i++) values[i] *= std;
      return values;
    },
    origin: (key) => {
      const e = entry(key);
      return `random(${e.init === 'normal' ? `normal, std ${e.std ?? 0.02}` : e.init}, seed ${seed})`;
    },
    close: () => {},
  };
}
