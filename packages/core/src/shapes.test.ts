import { describe, expect, it } from 'vitest';
import { ShapeError } from './errors.js';
import { assertShape, dimOf } from './shapes.js';

const t = (...shape: number[]) => ({ shape });

describe('assertShape', () => {
  it('passes exact numbers and free labels', () => {
    expect(() => assertShape('selected', t(16, 576, 1408), [16, 'N', 'Cv'])).not.toThrow();
    expect(() => assertShape('scalar', t(), [])).not.toThrow();
  });

  it('names the tensor, both shapes and the failing dim', () => {
    expect(() => assertShape('selected', t(12, 576, 1408), [16, 'N', 'Cv'])).toThrow(
      'selected: expected [16, N, Cv], got [12, 576, 1408] (dim 0)',
    );
  });

  it('reports a rank mismatch', () => {
    const error = (() => {
      try {
        assertShape('patches', t(4, 5), ['T', 'N', 'Cv']);
      } catch (e) {
        return e;
      }
    })() as ShapeError;
    expect(error).toBeInstanceOf(ShapeError);
    expect(error.code).toBe('SHAPE_MISMATCH');
    expect(error.tensor).toBe('patches');
    expect(error.expected).toEqual(['T', 'N', 'Cv']);
    expect(error.actual).toEqual([4, 5]);
    expect(error.message).toBe('patches: expected [T, N, Cv], got [4, 5] (rank 2 ≠ 3)');
  });

  it('a repeated label must take one size', () => {
    expect(() => assertShape('square', t(3, 3), ['N', 'N'])).not.toThrow();
    expect(() => assertShape('square', t(3, 4), ['N', 'N'])).toThrow('square: expected [N, N], got [3, 4] (N is 3 and 4)');
  });
});

describe('dimOf', () => {
  it('reads positive and negative axes', () => {
    expect(dimOf(t(2, 3, 5), 1)).toBe(3);
    expect(dimOf(t(2, 3, 5), -1)).toBe(5);
  });
  it('throws a ShapeError past the rank', () => {
    expect(() => dimOf(t(2), 3)).toThrow(ShapeError);
  });
});
