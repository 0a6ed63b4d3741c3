import { ConfigError, InvalidArgumentError, Linear, ParameterStore, Rng, ShapeError, WeightsError, initBackend, tf, type MergedFrames, type QuestionTokens } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureMerged, fixtureQuestion, fixtureWeights, maxAbsDiff, tinyQFormer, visualExpected } from '../test/visual-fixture.js';
import { budgetTokensPerFrame } from './budget.js';
import { qformerSampleConfig } from './config.js';
import type { QFormerSample } from './qformer-sample.js';
import { spatialSampleRegistry } from './registry.js';

const deps = { rng: Rng.fromSeed(0), dims: { Cv: 24 } };
const context = { training: false, rng: Rng.fromSeed(0) };

function fixtureSampler(tokenBudget: number | null): QFormerSample {
  const stage = spatialSampleRegistry.create({ kind: 'qformer', numQueries: 6, tokenBudget, qformer: tinyQFormer }, deps) as QFormerSample;
  const weights = fixtureWeights(['vlm_att_query_spatial', 'vlm_att_encoder_spatial.']);
  stage.loadWeights(weights);
  weights.forEach((t) => t.dispose());
  return stage;
}

/** V = (Z · W1ᵀ + b1) · W2ᵀ + b2, frame-major: the fixture's two-Linear projector (spec §1.1 (e), D9). */
function project(z: tf.Tensor3D): tf.Tensor {
  const store = new ParameterStore('projector', Rng.fromSeed(0));
  const first = new Linear(store, 'vlm_att_projector_spatial', 32, 24);
  const second = new Linear(store, 'vlm_att_val_projector_spatial', 24, 40);
  const weights = fixtureWeights(['vlm_att_projector_spatial.', 'vlm_att_val_projector_spatial.']);
  store.load(weights);
  weights.forEach((t) => t.dispose());
  const v = tf.tidy(() => second.apply(first.apply(tf.reshape(z, [-1, 32]))));
  store.dispose();
  return v;
}

describe('qformer spatial sampling (spec §1.1 (c), (d))', () => {
  let stage: QFormerSample;
  let merged: MergedFrames;
  let question: QuestionTokens;

  beforeAll(async () => {
    await initBackend();
    stage = fixtureSampler(24);
    merged = fixtureMerged();
    question = fixtureQuestion();
  });
  afterAll(() => stage.dispose());

  it('defaults: R 32, budget θ 576 (D12), InstructBLIP Q-Former; output width Cq', () => {
    expect(qformerSampleConfig.parse({ kind: 'qformer' })).toMatchObject({ numQueries: 32, tokenBudget: 576, qformer: { hiddenSize: 768, numLayers: 12 } });
    expect(stage.outDim).toBe(32);
  });

  it('matches the fixture: Z [3, 6, 32], and the two-Linear projection gives V [18, 40], within 1e-4', () => {
    const { spatialTokens } = stage.apply({ merged, question }, context);
    expect(spatialTokens.shape).toEqual([3, 6, 32]);
    expect(maxAbsDiff(spatialTokens, visualExpected.Z)).toBeLessThan(1e-4);
    const v = project(spatialTokens);
    expect(maxAbsDiff(v, visualExpected.V)).toBeLessThan(1e-4);
    tf.dispose([spatialTokens, v]);
  });

  it('frames are independent: the time-sorted variant permutes Z the same way (D3)', () => {
    const sorted = fixtureMerged(visualExpected.sorted_variant.X_merged);
    const { spatialTokens } = stage.apply({ merged: sorted, question }, context);
    expect(maxAbsDiff(spatialTokens, visualExpected.sorted_variant.Z)).toBeLessThan(1e-4);
    tf.dispose([spatialTokens, sorted.merged]);
  });

  it('the budget rule N′ = trunc(max(1, ⌊θ/R⌋/K′·R)) (D12) matches the code’s numbers', () => {
    expect(budgetTokensPerFrame(24, 6, 3)).toBe(visualExpected.spatial_tokens_per_frame);
    expect(budgetTokensPerFrame(6, 6, 3)).toBe(visualExpected.budget_variant.spatial_tokens_per_frame);
    // The released model: 576 // 32 = 18 frames; K′ 16 → 36 (no merge), 20 → 28.8 → 28, 32 → 18 (spec §1.1 (d)).
    expect([16, 20, 32].map((k) => budgetTokensPerFrame(576, 32, k))).toEqual([36, 28, 18]);
    expect(stage.tokensPerFrame(3)).toBe(6);
  });

  it('with θ = 6 the ToMe merge runs: Z_after_budget [3, 2, 32] and V [6, 40]', () => {
    const small = fixtureSampler(6);
    expect(small.tokensPerFrame(3)).toBe(2);
    const { spatialTokens } = small.apply({ merged, question }, context);
    expect(spatialTokens.shape).toEqual([3, 2, 32]);
    expect(maxAbsDiff(spatialTokens, visualExpected.budget_variant.Z_after_budget)).toBeLessThan(1e-4);
    const v = project(spatialTokens);
    expect(maxAbsDiff(v, visualExpected.budget_variant.V)).toBeLessThan(1e-4);
    // Budget off: R tokens whatever K′ is.
    const off = fixtureSampler(null);
    expect(off.tokensPerFrame(100)).toBe(6);
    tf.dispose([spatialTokens, v]);
    small.dispose();
    off.dispose();
  });

  it('a per-call θ (a request’s max_visual_tokens) gives what a stage configured with it gives: the fixture’s θ = 6 variant', () => {
    expect(stage.tokensPerFrame(3, undefined, 6)).toBe(visualExpected.budget_variant.spatial_tokens_per_frame);
    const { spatialTokens } = stage.apply({ merged, question, tokenBudget: 6 }, context);
    expect(maxAbsDiff(spatialTokens, visualExpected.budget_variant.Z_after_budget)).toBeLessThan(1e-4);
    const { spatialTokens: unmerged } = stage.apply({ merged, question, tokenBudget: null }, context);
    expect(maxAbsDiff(unmerged, visualExpected.Z)).toBeLessThan(1e-4);
    tf.dispose([spatialTokens, unmerged]);
  });

  it('is differentiable into the spatial queries and the merged patches', () => {
    const queries = stage.variables().get('vlm_att_query_spatial')!;
    const x = tf.variable(merged.merged.clone());
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(stage.apply({ merged: { ...merged, merged: x as unknown as tf.Tensor3D }, question }, context).spatialTokens)) as tf.Scalar, [queries, x]);
    for (const g of Object.values(grads)) expect(tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0])).toBeGreaterThan(0);
    tf.dispose([value, x, ...Object.values(grads)]);
  });

  it('rejects bad input and configs with typed errors', () => {
    const wide = { ...merged, merged: tf.zeros([3, 8, 25]) as tf.Tensor3D };
    expect(() => stage.apply({ merged: wide, question }, context)).toThrow(ShapeError);
    const none = { ...merged, merged: tf.zeros([0, 8, 24]) as tf.Tensor3D };
    expect(() => stage.apply({ merged: none, question }, context)).toThrow(InvalidArgumentError);
    expect(() => spatialSampleRegistry.parse({ kind: 'qformer', budget: 10 })).toThrow(ConfigError);
    expect(() => spatialSampleRegistry.create({ kind: 'qformer' }, { rng: Rng.fromSeed(0), dims: {} })).toThrow(ConfigError);
    tf.dispose([wide.merged, none.merged]);
  });

  it('loads strictly: the unused vlm_att_ln_spatial is unexpected', () => {
    expect([...stage.variables().keys()].filter((k) => !k.startsWith('vlm_att_encoder_spatial.'))).toEqual(['vlm_att_query_spatial']);
    const fresh = spatialSampleRegistry.create({ kind: 'qformer', numQueries: 6, qformer: tinyQFormer }, deps);
    const weights = fixtureWeights(['vlm_att_query_spatial', 'vlm_att_encoder_spatial.', 'vlm_att_ln_spatial.']);
    expect(() => fresh.loadWeights(weights)).toThrow(WeightsError);
    weights.forEach((t) => t.dispose());
    fresh.dispose();
  });

  it('does not leak tensors over repeated runs, with and without the budget merge', () => {
    const small = fixtureSampler(6);
    const run = () => {
      stage.apply({ merged, question }, context).spatialTokens.dispose();
      small.apply({ merged, question }, context).spatialTokens.dispose();
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    small.dispose();
  });
});
