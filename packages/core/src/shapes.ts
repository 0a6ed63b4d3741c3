import type { Tensor } from '@tensorflow/tfjs-core';
import { ShapeError } from './errors.js';

/** One declared dimension: a number must match exactly, a string is a label that matches any size. */
export type Dim = number | string;

/**
 * Throws a {@link ShapeError} naming `name` unless `tensor` has exactly `expected.length` dims and every numeric dim
 * matches. Labels that repeat (`['N', 'N']`) must take the same size wherever they appear.
 */
export function assertShape(name: string, tensor: Pick<Tensor, 'shape'>, expected: readonly Dim[]): void {
  const actual = tensor.shape;
  if (actual.length !== expected.length) throw new ShapeError(name, expected, actual, `rank ${actual.length} ≠ ${expected.length}`);
  const bound = new Map<string, number>();
  for (let i = 0; i < expected.length; i++) {
    const want = expected[i];
    const got = actual[i];
    if (typeof want === 'number') {
      if (want !== got) throw new ShapeError(name, expected, actual, `dim ${i}`);
    } else {
      const seen = bound.get(want);
      if (seen === undefined) bound.set(want, got);
      else if (seen !== got) throw new ShapeError(name, expected, actual, `${want} is ${seen} and ${got}`);
    }
  }
}

/** Reads the size a label took in a shape that passed {@link assertShape}. */
export function dimOf(tensor: Pick<Tensor, 'shape'>, axis: number): number {
  const d = tensor.shape[axis < 0 ? tensor.shape.length + axis : axis];
  if (d === undefined) throw new ShapeError('tensor', [`axis ${axis}`], tensor.shape);
  return d;
}
