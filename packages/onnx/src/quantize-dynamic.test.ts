import { InvalidArgumentError } from '@bvllm/core';
import { describe, expect, it } from 'vitest';
import { convertToFloat16 } from './float16.js';
import { GraphBuilder } from './graph-builder.js';
import { linear, transposeMatrix } from './layers.js';
import { DYNAMIC_INT8_MAX_CODE, dequantizeColumns, quantizeColumnsInt8 } from './quantize.js';
import { dynamicQuantizeMatMuls, quantizeGraph } from './quantize-pass.js';
import { f32, pseudoRandom, runGraph } from './test-support.js';
import { lazyWeight } from './weights.js';

describe('per-column int8 (DynamicQuantizeMatMul layout)', () => {
  it('dequantised weights are within half a column scale, and codes stay in the 7-bit range', () => {
    const [k, n] = [50, 6];
    const columns = pseudoRandom(k * n, 3);
    columns[7] = -3; // an outlier widens only column 0's scale
    const q = quantizeColumnsInt8(columns, k, n);
    expect(q.codes.length).toBe(k * n);
    expect(Math.max(...Array.from(q.codes, Math.abs))).toBe(DYNAMIC_INT8_MAX_CODE);
    const back = dequantizeColumns(q);
    for (let col = 0; col < n; col++)
      for (let i = 0; i < k; i++) expect(Math.abs(back[col * k + i] - columns[col * k + i])).toBeLessThanOrEqual((q.scales[col] / 2) * (1 + 1e-6));
    expect(q.scales[0]).toBeCloseTo(3 / DYNAMIC_INT8_MAX_CODE, 6);
    expect(q.scales[1]).toBeLessThan(q.scales[0] / 2);
  });

  it('rejects a code range outside int8', () => {
    expect(() => quantizeColumnsInt8(new Float32Array(4), 2, 2, 128)).toThrowError(InvalidArgumentError);
  });
});

/** `y = a · W + b` as a graph: the shape of every linear layer of a tower. */
function linearGraph(weight: Float32Array, bias: Float32Array, k: number, n: number, lazy: boolean): GraphBuilder {
  const g = new GraphBuilder('lin');
  const hf = transposeMatrix(weight, k, n); // [N, K], the HF layout linear() takes
  const w = lazy ? lazyWeight([n, k], () => hf) : { data: hf, dims: [n, k] };
  const b = lazy ? lazyWeight([n], () => bias) : { data: bias, dims: [n] };
  g.output('y', 'float32', ['m', n], linear(g, g.input('a', 'float32', ['m', k]), 'lin', w, b));
  return g;
}

describe('dynamicQuantizeMatMuls', () => {
  const [m, k, n] = [4, 200, 24];
  const weight = pseudoRandom(k * n, 11);
  const bias = pseudoRandom(n, 12);
  // Activations in [−1, 1] like a normalised hidden state; uint8 codes cover [min(a, 0), max(a, 0)].
  const a = pseudoRandom(m * k, 13).map((v) => v * 2);

  for (const lazy of [false, true])
    it(`${lazy ? 'lazy' : 'eager'} weights: onnxruntime matches float32 within the derived bound, bias folded in`, async () => {
      const g = linearGraph(weight, bias, k, n, lazy);
      const result = dynamicQuantizeMatMuls(g);
      expect(result.quantized).toHaveLength(1);
      expect(result.bytesAfter).toBe(k * n + 4 * n);
      expect(g.nodes.map((node) => node.opType)).toEqual(['DynamicQuantizeMatMul', 'Identity']);
      const feeds = { a: f32(a, [m, k]) };
      const exact = (await runGraph(linearGraph(weight, bias, k, n, false), feeds)).y.data as Float32Array;
      const approx = (await runGraph(g, feeds)).y.data as Float32Array;
      // |â·ŵ − a·w| ≤ Σ_k |a_k| · s_w(n) / 2 + s_a / 2 · Σ_k |ŵ_kn|, with s_a = (max(a, 0) − min(a, 0)) / 255.
      const q = quantizeColumnsInt8(transposeMatrix(weight, k, n), k, n);
      const dequantized = dequantizeColumns(q);
      const halfA = (Math.max(0, ...a) - Math.min(0, ...a)) / 255 / 2;
      let worst = 0;
      for (let row = 0; row < m; row++)
        for (let col = 0; col < n; col++) {
          let limit = 0;
          for (let i = 0; i < k; i++) limit += (Math.abs(a[row * k + i]) * q.scales[col]) / 2 + halfA * Math.abs(dequantized[col * k + i]);
          const error = Math.abs(approx[row * n + col] - exact[row * n + col]);
          expect(error).toBeLessThanOrEqual(limit + 1e-5);
          worst = Math.max(worst, error / limit);
        }
      // The bound is not vacuous: the error reaches a real fraction of it.
      expect(worst).toBeGreaterThan(0.02);
    });

  it('keeps the node float32 inside a float16 graph', async () => {
    const g = linearGraph(weight, bias, k, n, false);
    quantizeGraph(g, 'dynamic-int8');
    const reference = (await runGraph(g, { a: f32(a, [m, k]) })).y.data as Float32Array;
    convertToFloat16(g);
    const dq = g.nodes.find((node) => node.opType === 'DynamicQuantizeMatMul')!;
    expect(dq.keepFloat32).toBe(true);
    const half = (await runGraph(g, { a: f32(a, [m, k]) })).y.data as Float32Array;
    // Only the float16 casts of the input and the output differ.
    for (let i = 0; i < half.length; i++) expect(Math.abs(half[i] - reference[i])).toBeLessThanOrEqual(2e-3 * (1 + Math.abs(reference[i])));
  });

  it('names the presets when given an unknown one', () => {
    expect(() => quantizeGraph(new GraphBuilder('x'), 'int3' as never)).toThrowError(/int8, int4, dynamic-int8/);
  });
});
