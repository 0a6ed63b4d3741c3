import { describe, expect, it } from 'vitest';
import { GraphBuilder } from './graph-builder.js';
import { f32, i64, runGraph } from './test-support.js';

const values = (t: { data: unknown }) => Array.from(t.data as ArrayLike<number | bigint>, Number);

describe('op helpers in onnxruntime, against hand-computed values', () => {
  it('gemm, cumSum, trilu, constantOfShape, range, expand, where, reduceSum, slice with steps, cast', async () => {
    const g = new GraphBuilder('ops');
    const x = g.input('x', 'float32', [2, 3]);
    const n = g.input('n', 'int64', []);
    const w = g.initializer('w', Float32Array.from([1, 0, 0, 1, 1, 1]), [2, 3]);
    // x [2, 3] · wᵀ [3, 2] · 2 + 0.5 · c
    g.output('gemm', 'float32', [2, 2], g.op.gemm(x, w, g.float([10, 20]), { transB: true, alpha: 2, beta: 0.5 }));
    g.output('cumsum', 'float32', [2, 3], g.op.cumSum(x, g.int64([1], true)));
    g.output('cumsum_rev_excl', 'float32', [2, 3], g.op.cumSum(x, g.int64([1], true), { exclusive: true, reverse: true }));
    g.output('lower', 'float32', [2, 3], g.op.trilu(x, false));
    g.output('filled', 'int64', [2, 'n'], g.op.constantOfShape(g.op.concat([g.int64([2]), g.op.unsqueeze(n, [0])], 0), 7, 'int64'));
    g.output('range', 'int64', ['n'], g.op.range(g.int64([0], true), n, g.int64([1], true)));
    g.output('expanded', 'float32', [2, 2, 3], g.op.expand(g.op.unsqueeze(x, [0]), [2, 1, 1]));
    g.output('positive', 'float32', [2, 3], g.op.where(g.op.greater(x, g.float(0)), x, g.float(0)));
    g.output('rowsum', 'float32', [2], g.op.reduceSum(x, [1], false));
    g.output('odd', 'float32', [2, 2], g.op.slice(x, [0], [3], [1], [2]));
    g.output('as_int', 'int32', [2, 3], g.op.cast(x, 'int32'));
    const out = await runGraph(g, { x: f32([1, -2, 3, 4, 5, -6], [2, 3]), n: i64([4], []) });
    // x·wᵀ = [[1, 2], [4, 3]] → ·2 + [5, 10]
    expect(values(out.gemm)).toEqual([7, 14, 13, 16]);
    expect(values(out.cumsum)).toEqual([1, -1, 2, 4, 9, 3]);
    expect(values(out.cumsum_rev_excl)).toEqual([1, 3, 0, -1, -6, 0]);
    expect(values(out.lower)).toEqual([1, 0, 0, 4, 5, 0]);
    expect(values(out.filled)).toEqual(Array(8).fill(7));
    expect(out.filled.dims).toEqual([2, 4]);
    expect(values(out.range)).toEqual([0, 1, 2, 3]);
    expect(values(out.expanded)).toEqual([1, -2, 3, 4, 5, -6, 1, -2, 3, 4, 5, -6]);
    expect(values(out.positive)).toEqual([1, 0, 3, 4, 5, 0]);
    expect(values(out.rowsum)).toEqual([2, 3]);
    expect(values(out.odd)).toEqual([1, 3, 4, -6]);
    expect(values(out.as_int)).toEqual([1, -2, 3, 4, 5, -6]);
  });

  it('shape with start/end, gather on axis 1, squeeze, transpose, reshape with 0 and −1, layerNormalization without bias', async () => {
    const g = new GraphBuilder('ops2');
    const x = g.input('x', 'float32', ['a', 2, 2]);
    g.output('dims', 'int64', [2], g.op.shape(x, 1, 3));
    g.output('picked', 'float32', ['a', 2], g.op.gather(x, g.int64([1], true), 1));
    g.output('flat', 'float32', ['a', 4], g.op.reshape(x, [0, -1]));
    g.output('swapped', 'float32', [2, 2, 'a'], g.op.transpose(x, [2, 1, 0]));
    g.output('first', 'float32', [2, 2], g.op.squeeze(g.op.slice(x, [0], [1], [0]), [0]));
    g.output('ln', 'float32', ['a', 2, 2], g.op.layerNormalization(x, g.float([1, 2]), undefined, 0));
    const out = await runGraph(g, { x: f32([1, 2, 3, 4], [1, 2, 2]) });
    expect(values(out.dims)).toEqual([2, 2]);
    expect(values(out.picked)).toEqual([3, 4]);
    expect(out.flat.dims).toEqual([1, 4]);
    expect(values(out.swapped)).toEqual([1, 3, 2, 4]);
    expect(values(out.first)).toEqual([1, 2, 3, 4]);
    // Each pair (a, a + 1) normalises to (−1, 1), then scales by (1, 2).
    expect(values(out.ln).map((v) => Math.round(v * 1e4) / 1e4)).toEqual([-1, 2, -1, 2]);
  });
});
