/**
 * Test-only loader for the shared `bvllm-visual` fixture (read in place, never copied; see its README.md). Its values
 * come from an independent float64 numpy implementation of the reference semantics.
 */
import { readFileSync } from 'node:fs';

const dir = new URL('../../../../shared/fixtures/bvllm-visual/', import.meta.url);

export function readFixture<T>(file: 'expected.json' | 'inputs.json' | 'tome_test.json'): T {
  return JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as T;
}

/** One ToMe step as the fixture records it, per frame. */
export interface FixtureStep {
  t_in: number;
  r: number;
  unmerged_even_order: number[][];
  merged_even: number[][];
  merged_into_odd: number[][];
}

/** Largest |a − b| over two nested arrays of the same shape. */
export function maxAbsDiff(a: unknown, b: unknown): number {
  const fa = (a as number[]).flat(Infinity as 1) as number[];
  const fb = (b as number[]).flat(Infinity as 1) as number[];
  if (fa.length !== fb.length) return Infinity;
  return fa.reduce((m, v, i) => Math.max(m, Math.abs(v - fb[i]!)), 0);
}
