/** Small draws on top of the core `Rng`: a float in a range, one item, k distinct items. */
import type { Rng } from '@bvllm/core';

export function uniformIn(rng: Rng, low: number, high: number): number {
  return low + rng.uniformArray(1)[0] * (high - low);
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

/** `k` distinct items in random order. */
export function pickDistinct<T>(rng: Rng, items: readonly T[], k: number): T[] {
  return rng.shuffle(items).slice(0, k);
}
