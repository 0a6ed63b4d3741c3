/**
 * NaN / Infinity detection at load (issue #20 item 4): a model folder with a NaN weight used to serve answers made of
 * NUL characters. The check rides on the reads the loaders do anyway (one pass over each tensor's float32 values as
 * it is read), so it costs no extra I/O.
 */
import { NonFiniteWeightsError } from './errors.js';
import type { WeightSource } from './weight-source.js';

/** What to do with a non-finite weight: refuse it (the default) or warn and go on. */
export interface FiniteCheckOptions {
  /** `error` (default) throws NonFiniteWeightsError; `warn` calls `onWarning` with the same message and goes on. */
  nonFinite?: 'error' | 'warn';
  /** Receives the warning in `warn` mode; default `process.emitWarning`. */
  onWarning?: (message: string) => void;
}

/** Throws (or warns about) the first non-finite value of `values`, a tensor `key` of `source`. */
export function checkFinite(source: string, key: string, values: ArrayLike<number>, options: FiniteCheckOptions = {}): void {
  let count = 0;
  let first = -1;
  for (let i = 0; i < values.length; i++) {
    // x - x is 0 for every finite x and NaN for NaN and ±Infinity: one comparison per value.
    if (values[i] - values[i] !== 0) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (count === 0) return;
  const error = new NonFiniteWeightsError(source, key, count, first, values[first]);
  if (options.nonFinite === 'warn') (options.onWarning ?? ((m: string) => process.emitWarning(m)))(error.message);
  else throw error;
}

/** `source` with every `read` checked by {@link checkFinite}; closing the view closes `source`. */
export function finiteSource(source: WeightSource, options: FiniteCheckOptions = {}): WeightSource {
  return {
    keys: () => source.keys(),
    has: (key) => source.has(key),
    info: (key) => source.info(key),
    read: (key) => {
      const values = source.read(key);
      checkFinite(source.origin(key), key, values, options);
      return values;
    },
    origin: (key) => source.origin(key),
    close: () => source.close(),
  };
}
