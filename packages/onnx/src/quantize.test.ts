import { InvalidArgumentError } from '@bvllm/core';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from './graph-builder.js';
import { transposeMatrix } from './layers.js';
import { dequantizeBlocks, quantizeBlocks, type BlockQuantOptions } from './quantize.js';
import { quantizeMatMuls } from './quantize-pass.js';
import { f32, pseudoRandom, runGraph } from './test-support.js';

const CASES: { label: string; options: BlockQuantOptions }[] = [
  { label: 'int8 symmetric', options: { bits: 8, blockSize: 32, symmetric: true } },
  { label: 'int4 asymmetric', options: { bits: 4, blockSize: 32, symmetric: false } },
  { label: 'int4 symmetric, block 16', options: { bits: 4, blockSize: 16, symmetric: true } },
];

/** Per element of W (column-major like the quantiser's input), half the scale of the block that holds it. */
function halfScales(q: ReturnType<typeof quantizeBlocks>): Float32Array {
  const out = new Float32Array(q.k * q.n);
  for (let col = 0; col < q.n; col++) for (let i = 0; i < q.k; i++) out[col * q.k + i] = q.scales[col * q.kBlocks + Math.floor(i / q.blockSize)] / 2;
  return out;
}

describe('block quantisation (MatMulNBits layout)', () => {
  for (const { label, options } of CASES)
    it(`${label}: dequantised weights are within half a block scale of the originals`, () => {
      // K = 72 is not a multiple of the block size: the last block is padded.
      const k = 72;
      const n = 5;
      const columns = pseudoRandom(k * n, 7);
      columns[3] = 4; // an outlier widens only its own block's scale
      const q = quantizeBlocks(columns, k, n, options);
      expect(q.codes.length).toBe(n * Math.ceil(k / q.blockSize) * ((q.blockSize * options.bits) / 8));
      expect(q.zeroPoints === undefined).toBe(Boolean(options.symmetric));
      const back = dequantizeBlocks(q);
      const bound = halfScales(q);
      for (let i = 0; i < columns.length; i++) expect(Math.abs(back[i] - columns[i])).toBeLessThanOrEqual(bound[i] * (1 + 1e-6));
      // The bound is tight enough to mean something: 2^bits levels across each block's range.
      const levels = options.symmetric ? 2 ** (options.bits - 1) - 1 : 2 ** options.bits - 1;
      expect(Math.max(...bound.slice(q.blockSize * 2))).toBeLessThan(2 / levels);
    });

  it('rejects a block size MatMulNBits cannot take', () => {
    expect(() => quantizeBlocks(new Float32Array(48), 48, 1, { bits: 4, blockSize: 24 })).toThrowError(InvalidArgumentError);
  });

  for (const { label, options } of CASES)
    for (const accuracyLevel of [0, 4] as const)
      it(`${label}, accuracy level ${accuracyLevel}: the MatMulNBits graph in onnxruntime matches float32 MatMul within the derived bound`, async () => {
        const [m, k, n] = [3, 96, 40];
        const weight = pseudoRandom(k * n, 9);
        const a = pseudoRandom(m * k, 10);
        const build = () => {
          const g = new GraphBuilder('mm');
          g.output('y', 'float32', ['m', n], g.op.matMul(g.input('a', 'float32', ['m', k]), g.initializer('w', weight, [k, n])));
          return g;
        };
        const quantized = build();
        const result = quantizeMatMuls(quantized, { ...options, accuracyLevel });
        expect(result.quantized).toEqual(['w']);
        expect(quantized.initializers.has('w')).toBe(false);
        expect(quantized.nodes.map((node) => node.opType)).toEqual(['MatMulNBits', 'Identity']);
        const feeds = { a: f32(a, [m, k]) };
        const exact = (await runGraph(build(), feeds)).y.data as Float32Array;
        const approx = (await runGraph(quantized, feeds)).y.data as Float32Array;
        // Weights: |Σ_k a_k (ŵ_kn − w_kn)| ≤ Σ_k |a_k| · scale_w(k, n) / 2. Level 4 also rounds each activation to
        // int8 within its block of K (scale_a = absmax / 127), adding Σ_k scale_a(k) / 2 · |ŵ_kn|.
        const q = quantizeBlocks(transposeMatrix(weight, k, n), k, n, options);
        const halfW = halfScales(q);
        const dequantized = dequantizeBlocks(q);
        for (let row = 0; row < m; row++) {
          const halfA = Array.from({ length: k }, (_, i) => {
            const start = row * k + Math.floor(i / q.blockSize) * q.blockSize;
            return accuracyLevel === 4 ? Math.max(...Array.from(a.subarray(start, start + q.blockSize), Math.abs)) / 127 / 2 : 0;
          });
          for (let col = 0; col < n; col++) {
            let limit = 0;
            for (let i = 0; i < k; i++) limit += Math.abs(a[row * k + i]) * halfW[col * k + i] + halfA[i] * Math.abs(dequantized[col * k + i]);
            expect(Math.abs(approx[row * n + col] - exact[row * n + col])).toBeLessThanOrEqual(limit + 1e-4);
          }
        }
      });
});
