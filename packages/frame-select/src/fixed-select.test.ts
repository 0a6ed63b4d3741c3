import { ConfigError, Rng, initBackend, tf, type FrameFeatures, type QuestionTokens } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureFeatures, fixtureQuestion, fixtureWeights, maxAbsDiff, visualExpected } from '../test/visual-fixture.js';
import { frameSelectRegistry } from './registry.js';
import { uniformFrameIndices } from './fixed-select.js';
import type { FrameSelectStage } from './types.js';

const deps = { rng: Rng.fromSeed(0), dims: { Cv: 24 } };
const context = { training: false, rng: Rng.fromSeed(0) };

describe('uniform and all baselines (spec §5)', () => {
  let features: FrameFeatures;
  let question: QuestionTokens;
  let all: FrameSelectStage;
  let uniform: FrameSelectStage;

  beforeAll(async () => {
    await initBackend();
    features = fixtureFeatures();
    question = fixtureQuestion();
    all = frameSelectRegistry.create({ kind: 'all' }, deps);
    uniform = frameSelectRegistry.create({ kind: 'uniform', numFrames: 3 }, deps);
    const ln = fixtureWeights(['vlm_att_ln_temporal.']);
    all.loadWeights(ln);
    uniform.loadWeights(ln);
    ln.forEach((t) => t.dispose());
  });
  afterAll(() => {
    all.dispose();
    uniform.dispose();
  });

  it('uniform indices are the rounded midpoints of K segments of [0, T − 1] (VideoLLaMA2 frame_sample)', () => {
    // T 10, K 4: segment 9/4 = 2.25, midpoints 1.125 3.375 5.625 7.875.
    expect(uniformFrameIndices(10, 4)).toEqual([1, 3, 6, 8]);
    // T 7, K 3: segment 2, midpoints 1 3 5.
    expect(uniformFrameIndices(7, 3)).toEqual([1, 3, 5]);
    // T 3, K 4: segment 0.5, midpoints 0.25 0.75 1.25 1.75 — frames repeat when K > T.
    expect(uniformFrameIndices(3, 4)).toEqual([0, 1, 1, 2]);
    expect(uniformFrameIndices(1, 2)).toEqual([0, 0]);
  });

  it('all keeps every frame with identity weights and LN_t(patches) = the fixture patches_ln', () => {
    const out = all.apply({ features, question }, context);
    expect(maxAbsDiff(out.frameWeights, tf.eye(7).arraySync())).toBe(0);
    expect(maxAbsDiff(out.selected, visualExpected.patches_ln)).toBeLessThan(1e-4);
    expect(Array.from(out.frameIndices)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(all.outputFrames(7)).toBe(7);
    tf.dispose([out.frameWeights, out.selected]);
  });

  it('uniform picks frames 1, 3, 5 of 7 with one-hot rows', () => {
    const out = uniform.apply({ features, question }, context);
    const ln = visualExpected.patches_ln as number[][][];
    expect(maxAbsDiff(out.selected, [ln[1], ln[3], ln[5]])).toBeLessThan(1e-4);
    expect(out.frameWeights.arraySync()).toEqual([1, 3, 5].map((i) => Array.from({ length: 7 }, (_, t) => (t === i ? 1 : 0))));
    expect(out.timestampsSec).toEqual([1, 3, 5]);
    tf.dispose([out.frameWeights, out.selected]);
  });

  it('variables are the temporal LayerNorm only; configs are strict', () => {
    expect([...uniform.variables().keys()]).toEqual(['vlm_att_ln_temporal.weight', 'vlm_att_ln_temporal.bias']);
    expect(() => frameSelectRegistry.parse({ kind: 'uniform', numFrames: 0 })).toThrow(ConfigError);
    expect(() => frameSelectRegistry.parse({ kind: 'all', numFrames: 4 })).toThrow(ConfigError);
    expect(frameSelectRegistry.kinds()).toEqual(['qformer-gumbel', 'uniform', 'all']);
  });

  it('does not leak tensors over repeated runs', () => {
    const run = () => {
      for (const stage of [all, uniform]) {
        const out = stage.apply({ features, question }, context);
        tf.dispose([out.frameWeights, out.selected]);
      }
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
  });
});
