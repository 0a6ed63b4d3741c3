import { InvalidArgumentError, Rng, initBackend, tf, type MergedFrames, type QuestionTokens } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { adaptivePoolMatrix } from './pool-sample.js';
import { spatialSampleRegistry } from './registry.js';

const deps = { rng: Rng.fromSeed(0), dims: { Cv: 2 } };
const context = { training: false, rng: Rng.fromSeed(0) };

/** K′ frames of a 3 × 3 grid; patch p of frame k has channels [p + 10k, −p]. */
function grid3(frames: number): MergedFrames {
  const values = Array.from({ length: frames }, (_, k) => Array.from({ length: 9 }, (_, p) => [p + 10 * k, -p]));
  return { merged: tf.tensor3d(values), groups: [], frameIndices: new Int32Array(frames), timestampsSec: [] };
}

describe('pool and none baselines (spec §5)', () => {
  // The baselines ignore the question; it is passed as the pipeline would.
  let question: QuestionTokens;
  beforeAll(async () => {
    await initBackend();
    question = { inputIds: tf.tensor2d([[101, 102]], undefined, 'int32'), attentionMask: tf.ones([1, 2], 'int32') as tf.Tensor2D };
  });

  it('adaptive pooling bins overlap as PyTorch’s: 3 → 2 gives rows {0, 1} and {1, 2}', () => {
    // Cell (0, 0) of a 3×3 → 2×2 pool averages patches 0, 1, 3, 4; cell (1, 1) averages 4, 5, 7, 8.
    const m = adaptivePoolMatrix([3, 3], [2, 2]);
    const row = (cell: number) => Array.from(m.subarray(cell * 9, cell * 9 + 9));
    expect(row(0)).toEqual([0.25, 0.25, 0, 0.25, 0.25, 0, 0, 0, 0]);
    expect(row(3)).toEqual([0, 0, 0, 0, 0.25, 0.25, 0, 0.25, 0.25]);
    // 4 → 2 is a plain 2×2 mean: disjoint bins.
    expect(Array.from(adaptivePoolMatrix([4, 4], [2, 2]).subarray(0, 16)).filter((v) => v > 0).length).toBe(4);
  });

  it('pool: [K′, N, Cv] → [K′, rows·cols, Cv], each frame pooled alone', () => {
    const stage = spatialSampleRegistry.create({ kind: 'pool', outputGrid: [2, 2] }, deps);
    expect(stage.outDim).toBe(2);
    expect(stage.tokensPerFrame(2, 9)).toBe(4);
    const input = grid3(2);
    const { spatialTokens } = stage.apply({ merged: input, question }, context);
    // Frame 1, cell (0, 1): patches 1, 2, 4, 5 → mean 3, plus 10 for frame 1; channel 2 is −3.
    expect(spatialTokens.shape).toEqual([2, 4, 2]);
    const out = spatialTokens.arraySync() as number[][][];
    expect(out[0][0]).toEqual([2, -2]);
    expect(out[1][1]).toEqual([13, -3]);
    expect(out[1][3]).toEqual([16, -6]);
    tf.dispose([spatialTokens, input.merged]);
  });

  it('pool: a 1 × 1 grid is the frame mean; a non-square N needs patchGrid', () => {
    const mean = spatialSampleRegistry.create({ kind: 'pool', outputGrid: [1, 1] }, deps);
    const input = grid3(1);
    const { spatialTokens } = mean.apply({ merged: input, question }, context);
    expect(spatialTokens.arraySync()).toEqual([[[4, -4]]]);
    const odd = { ...input, merged: tf.zeros([1, 6, 2]) as tf.Tensor3D };
    expect(() => mean.apply({ merged: odd, question }, context)).toThrow(InvalidArgumentError);
    const rect = spatialSampleRegistry.create({ kind: 'pool', outputGrid: [1, 3], patchGrid: [2, 3] }, deps);
    const r = rect.apply({ merged: odd, question }, context);
    expect(r.spatialTokens.shape).toEqual([1, 3, 2]);
    const fine = spatialSampleRegistry.create({ kind: 'pool', outputGrid: [4, 4] }, deps);
    expect(() => fine.apply({ merged: input, question }, context)).toThrow(InvalidArgumentError);
    tf.dispose([spatialTokens, input.merged, odd.merged, r.spatialTokens]);
  });

  it('none: every patch, a copy the caller owns', () => {
    const stage = spatialSampleRegistry.create({ kind: 'none' }, deps);
    const input = grid3(2);
    const { spatialTokens } = stage.apply({ merged: input, question }, context);
    expect(spatialTokens).not.toBe(input.merged);
    expect(spatialTokens.arraySync()).toEqual(input.merged.arraySync());
    expect(stage.tokensPerFrame(2, 9)).toBe(9);
    tf.dispose([spatialTokens, input.merged]);
  });

  it('parameter-free: no variables, and loadWeights accepts only an empty map', () => {
    const stage = spatialSampleRegistry.create({ kind: 'pool' }, deps);
    expect(stage.variables().size).toBe(0);
    stage.loadWeights(new Map());
    const t = tf.zeros([1]);
    expect(() => stage.loadWeights(new Map([['x', t]]))).toThrow(InvalidArgumentError);
    t.dispose();
  });

  it('does not leak tensors over repeated runs', () => {
    const stages = [spatialSampleRegistry.create({ kind: 'pool', outputGrid: [2, 2] }, deps), spatialSampleRegistry.create({ kind: 'none' }, deps)];
    const input = grid3(2);
    const run = () => stages.forEach((s) => s.apply({ merged: input, question }, context).spatialTokens.dispose());
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    input.merged.dispose();
  });
});
