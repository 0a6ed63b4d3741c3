import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bicubicMatrix, interpolatePositions } from './pos-interp.js';

const cases = JSON.parse(readFileSync(new URL('../../../../shared/fixtures/pos-interp/expected.json', import.meta.url), 'utf8')).cases as Record<
  string,
  { in_grid: [number, number]; out_grid: [number, number]; dim: number; input: number[][][]; expected: number[][][]; row_matrix: number[][]; col_matrix: number[][] }
>;

describe('position-embedding interpolation against the pos-interp fixture (spec §1.0)', () => {
  for (const [name, c] of Object.entries(cases)) {
    it(`${name}: 1-D matrices and the resized table within 1e-5`, () => {
      const rows = bicubicMatrix(c.in_grid[0], c.out_grid[0]);
      const cols = bicubicMatrix(c.in_grid[1], c.out_grid[1]);
      c.row_matrix.flat().forEach((v, i) => expect(Math.abs(rows[i] - v)).toBeLessThan(1e-9));
      c.col_matrix.flat().forEach((v, i) => expect(Math.abs(cols[i] - v)).toBeLessThan(1e-9));
      const out = interpolatePositions(Float32Array.from(c.input[0].flat()), c.dim, c.in_grid, c.out_grid, 1);
      const want = c.expected[0].flat();
      expect(out.length).toBe(want.length);
      const maxErr = want.reduce((m, v, i) => Math.max(m, Math.abs(out[i] - v)), 0);
      expect(maxErr).toBeLessThanOrEqual(1e-5);
    });
  }
});
