import { describe, expect, it } from 'vitest';
import { OnnxGraphError } from './errors.js';
import { GraphBuilder } from './graph-builder.js';
import { f32, i64, runGraph } from './test-support.js';

describe('GraphBuilder', () => {
  it('a hand-built graph runs in onnxruntime with hand-computed values', async () => {
    // y = relu-free affine: (x · W + b) then Softmax over the last axis, and a Gather of embedding rows.
    const g = new GraphBuilder('hand');
    const x = g.input('x', 'float32', ['batch', 2]);
    const ids = g.input('ids', 'int64', ['batch']);
    const w = g.initializer('w', Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
    const b = g.initializer('b', Float32Array.from([0.5, -0.5, 0]), [3]);
    const affine = g.op.add(g.op.matMul(x, w), b);
    g.output('affine', 'float32', ['batch', 3], affine);
    g.output('probs', 'float32', ['batch', 3], g.op.softmax(affine, -1));
    const table = g.initializer('table', Float32Array.from([10, 11, 20, 21, 30, 31]), [3, 2]);
    g.output('rows', 'float32', ['batch', 2], g.op.gather(table, ids, 0));
    const out = await runGraph(g, { x: f32([1, -1, 0.5, 2], [2, 2]), ids: i64([2, 0], [2]) });
    // [1, −1]·W = [1−4, 2−5, 3−6] = [−3, −3, −3]; [0.5, 2]·W = [0.5+8, 1+10, 1.5+12] = [8.5, 11, 13.5]; + b.
    expect(Array.from(out.affine.data as Float32Array)).toEqual([-2.5, -3.5, -3, 9, 10.5, 13.5]);
    const e = [Math.exp(-2.5), Math.exp(-3.5), Math.exp(-3)];
    const sum = e[0] + e[1] + e[2];
    const probs = out.probs.data as Float32Array;
    e.forEach((v, i) => expect(probs[i]).toBeCloseTo(v / sum, 6));
    expect(Array.from(out.rows.data as Float32Array)).toEqual([30, 31, 10, 11]);
  });

  it('rejects a node input that is not defined yet, naming the node and the tensor', () => {
    const g = new GraphBuilder('bad');
    g.input('x', 'float32', [2]);
    expect(() => g.op.add('x', 'later')).toThrowError(/node Add_0 \(Add\): input "later" is not defined/);
  });

  it('rejects a duplicate name, an initializer of the wrong size and an output nobody produces', () => {
    const g = new GraphBuilder('bad');
    g.input('x', 'float32', [2]);
    expect(() => g.initializer('x', new Float32Array(2), [2])).toThrowError(OnnxGraphError);
    expect(() => g.initializer('w', new Float32Array(5), [2, 3])).toThrowError(/dims \[2, 3\] hold 6 values, data has 5/);
    expect(() => g.output('y', 'float32', [2])).toThrowError(/graph output "y" is not produced/);
  });

  it('shares repeated constants and imports com.microsoft only when a node uses it', () => {
    const g = new GraphBuilder('consts');
    expect(g.int64([0, -1])).toBe(g.int64([0, -1]));
    expect(g.float(2)).not.toBe(g.int64([2], true));
    expect([...g.opsetImports()]).toEqual([['', 18]]);
    g.input('a', 'float32', [1, 32]);
    g.node('MatMulNBits', ['a'], 1, {}, 'com.microsoft');
    expect([...g.opsetImports()]).toEqual([['', 18], ['com.microsoft', 1]]);
  });
});
