import { BvllmError } from './errors.js';

/**
 * What went wrong reading a {@link WeightSource}: a key it lacks, a tensor that is not a float weight, two keys a
 * view maps onto one, a key rule a view cannot apply, values of the wrong length.
 */
export type WeightSourceProblem = 'missing-key' | 'not-float' | 'duplicate-key' | 'transform-rule' | 'wrong-length';

/**
 * A weight source cannot give what was asked. `keys` names every key concerned, `source` the source (a folder, a
 * view). The code is WEIGHTS_MISMATCH: to a caller it is a checkpoint that does not fit what reads it.
 */
export class WeightSourceError extends BvllmError {
  constructor(
    readonly source: string,
    readonly problem: WeightSourceProblem,
    readonly keys: readonly string[],
    reason: string,
  ) {
    super('WEIGHTS_MISMATCH', `${source}: ${reason}`);
  }
}

/** The "N key(s): a, b, … (N in all)" list an error message carries, capped at 20 names. */
export function keyList(keys: readonly string[]): string {
  return keys.slice(0, 20).join(', ') + (keys.length > 20 ? `, … (${keys.length} in all)` : '');
}
