import { ConfigError, InvalidArgumentError, Rng, ShapeError, WeightsError, initBackend, tf, type FrameFeatures, type QuestionTokens } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureFeatures, fixtureQuestion, fixtureWeights, maxAbsDiff, tinyQFormer, visualExpected, visualInputs } from '../test/visual-fixture.js';
import { qformerGumbelConfig } from './config.js';
import { QFormerGumbelSelect, createQFormerGumbelSelect } from './qformer-gumbel-select.js';
import { frameSelectRegistry } from './registry.js';

const prefixes = ['vlm_att_query_temporal', 'vlm_att_encoder_temporal.', 'vlm_att_ln_temporal.', 'vlm_att_projector_temporal.'];
const deps = (seed = 0) => ({ rng: Rng.fromSeed(seed), dims: { Cv: 24 } });
const inference = (seed = 0) => ({ training: false, rng: Rng.fromSeed(seed) });

/** The fixture's selector (K = 4 of 8 stored queries, τ 0.5, scale 1/√24) with its weights loaded. */
function fixtureSelector(overrides: Record<string, unknown> = {}): QFormerGumbelSelect {
  const stage = frameSelectRegistry.create({ kind: 'qformer-gumbel', numQueries: 4, numQueryTokens: 8, qformer: tinyQFormer, ...overrides }, deps()) as QFormerGumbelSelect;
  const weights = fixtureWeights(prefixes);
  stage.loadWeights(weights);
  weights.forEach((t) => t.dispose());
  return stage;
}

const dispose = (s: { frameWeights: tf.Tensor; selected: tf.Tensor }) => tf.dispose([s.frameWeights, s.selected]);

describe('qformer-gumbel frame selection (spec §1.1 (a))', () => {
  let stage: QFormerGumbelSelect;
  let features: FrameFeatures;
  let question: QuestionTokens;
  let noise: tf.Tensor2D;

  beforeAll(async () => {
    await initBackend();
    stage = fixtureSelector();
    features = fixtureFeatures();
    question = fixtureQuestion();
    noise = tf.tensor2d(visualInputs.gumbel_noise);
  });
  afterAll(() => stage.dispose());

  it('defaults follow spec §10: K 32 (D1), τ 0.5 with 1/√Cv (D2), seeded Gumbel at inference (D4), soft (D5), [CLS] (D10)', () => {
    const c = qformerGumbelConfig.parse({ kind: 'qformer-gumbel' });
    expect(c.logitScale).toBeUndefined();
    expect(c).toMatchObject({ numQueries: 32, numQueryTokens: 32, tau: 0.5, inferenceNoise: 'gumbel', straightThrough: false, selectionFeature: 'cls' });
    expect(c.qformer).toMatchObject({ hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072, crossAttentionFrequency: 2 });
  });

  it('matches the bvllm-visual fixture: S, W = softmax((S + G)/τ) and X = W · LN_t(P) within 1e-4', () => {
    const scores = stage.scores({ features, question });
    expect(maxAbsDiff(scores, visualExpected.S)).toBeLessThan(1e-4);
    const out = stage.apply({ features, question, gumbelNoise: noise }, inference());
    expect(out.frameWeights.shape).toEqual([4, 7]);
    expect(maxAbsDiff(out.frameWeights, visualExpected.W)).toBeLessThan(1e-4);
    expect(out.selected.shape).toEqual([4, 8, 24]);
    expect(maxAbsDiff(out.selected, visualExpected.X)).toBeLessThan(1e-4);
    const argmax = (visualExpected.W as number[][]).map((row) => row.indexOf(Math.max(...row)));
    expect(Array.from(out.frameIndices)).toEqual(argmax);
    expect(out.timestampsSec).toEqual(argmax);
    scores.dispose();
    dispose(out);
  });

  it('the selection feature ablation: mean/max pooling equal [CLS] when every patch is the [CLS] vector (spec §5)', () => {
    const clsPatches: FrameFeatures = { ...features, patches: tf.tile(tf.expandDims(features.cls, 1), [1, 8, 1]) as tf.Tensor3D };
    for (const selectionFeature of ['mean', 'max']) {
      const pooled = fixtureSelector({ selectionFeature });
      const s = pooled.scores({ features: clsPatches, question });
      expect(maxAbsDiff(s, visualExpected.S)).toBeLessThan(1e-4);
      s.dispose();
      pooled.dispose();
    }
    clsPatches.patches.dispose();
  });

  it('inference modes (D4): none = softmax(S/τ), hard = one-hot argmax S, gumbel = seeded and replayable', () => {
    const s = visualExpected.S as number[][];
    const softmaxRow = (row: number[]) => {
      const e = row.map((v) => Math.exp(v / 0.5 - Math.max(...row) / 0.5));
      const z = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / z);
    };
    const none = fixtureSelector({ inferenceNoise: 'none' });
    const outNone = none.apply({ features, question, gumbelNoise: noise }, inference());
    expect(maxAbsDiff(outNone.frameWeights, s.map(softmaxRow))).toBeLessThan(1e-5);
    const hard = fixtureSelector({ inferenceNoise: 'hard' });
    const outHard = hard.apply({ features, question }, inference());
    expect(maxAbsDiff(outHard.frameWeights, s.map((row) => row.map((v) => (v === Math.max(...row) ? 1 : 0))))).toBe(0);
    // Seeded noise: the stage's draw equals Gumbel noise drawn from an equal generator, so a seed replays a run.
    const drawn = stage.apply({ features, question }, inference(7));
    const replay = Rng.fromSeed(7).gumbel([4, 7]);
    const explicit = stage.apply({ features, question, gumbelNoise: replay as tf.Tensor2D }, inference());
    expect(maxAbsDiff(drawn.frameWeights, explicit.frameWeights.arraySync())).toBe(0);
    // A generator advances per call: the next call draws new noise.
    const ctx = inference(7);
    const first = stage.apply({ features, question }, ctx);
    const second = stage.apply({ features, question }, ctx);
    expect(maxAbsDiff(first.frameWeights, second.frameWeights.arraySync())).toBeGreaterThan(1e-3);
    [outNone, outHard, drawn, explicit, first, second].forEach(dispose);
    replay.dispose();
    none.dispose();
    hard.dispose();
  });

  it('straight-through (D5): one-hot forward, the soft weights’ gradient backward', () => {
    const st = fixtureSelector({ straightThrough: true });
    const training = { training: true, rng: Rng.fromSeed(0) };
    const probe = tf.tensor2d(Array.from({ length: 28 }, (_, i) => Math.sin(i + 1)), [4, 7]);
    const out = st.apply({ features, question, gumbelNoise: noise }, training);
    const w = visualExpected.W as number[][];
    expect(maxAbsDiff(out.frameWeights, w.map((row) => row.map((v) => (v === Math.max(...row) ? 1 : 0))))).toBe(0);
    const loss = (s: QFormerGumbelSelect) => () => {
      const o = s.apply({ features, question, gumbelNoise: noise }, training);
      tf.dispose(o.selected);
      return tf.sum(tf.mul(o.frameWeights, probe)) as tf.Scalar;
    };
    const gradOf = (s: QFormerGumbelSelect) => {
      const q = s.variables().get('vlm_att_projector_temporal.weight')!;
      const { value, grads } = tf.variableGrads(loss(s), [q]);
      value.dispose();
      return grads[q.name];
    };
    const gST = gradOf(st);
    const gSoft = gradOf(stage);
    expect(maxAbsDiff(gST, gSoft.arraySync())).toBeLessThan(1e-6);
    expect(tf.max(tf.abs(gSoft)).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([gST, gSoft, probe]);
    dispose(out);
    st.dispose();
  });

  it('rejects bad input with typed errors', () => {
    const empty: FrameFeatures = { cls: tf.zeros([0, 24]) as tf.Tensor2D, patches: tf.zeros([0, 8, 24]) as tf.Tensor3D, timestampsSec: [] };
    expect(() => stage.apply({ features: empty, question }, inference())).toThrow(InvalidArgumentError);
    const wide: FrameFeatures = { ...features, patches: tf.zeros([7, 8, 25]) as tf.Tensor3D };
    expect(() => stage.apply({ features: wide, question }, inference())).toThrow(ShapeError);
    const badNoise = tf.zeros([4, 6]) as tf.Tensor2D;
    expect(() => stage.apply({ features, question, gumbelNoise: badNoise }, inference())).toThrow(ShapeError);
    expect(() => stage.apply({ features: { ...features, timestampsSec: [0] }, question }, inference())).toThrow(InvalidArgumentError);
    tf.dispose([empty.cls, empty.patches, wide.patches, badNoise]);
  });

  it('rejects bad configs: K above the stored queries, unknown keys, missing Cv', () => {
    expect(() => frameSelectRegistry.parse({ kind: 'qformer-gumbel', numQueries: 33 })).toThrow(ConfigError);
    expect(() => frameSelectRegistry.parse({ kind: 'qformer-gumbel', temperature: 0.1 })).toThrow(ConfigError);
    const handBuilt = { ...qformerGumbelConfig.parse({ kind: 'qformer-gumbel', numQueries: 4, numQueryTokens: 8 }), numQueries: 9 };
    expect(() => createQFormerGumbelSelect(handBuilt, deps())).toThrow(InvalidArgumentError);
    expect(() => frameSelectRegistry.create({ kind: 'qformer-gumbel', qformer: tinyQFormer }, { rng: Rng.fromSeed(0), dims: {} })).toThrow(ConfigError);
  });

  it('loads weights strictly and names every trainable key', () => {
    expect([...stage.variables().keys()].filter((k) => !k.startsWith('vlm_att_encoder_temporal.'))).toEqual([
      'vlm_att_query_temporal',
      'vlm_att_ln_temporal.weight',
      'vlm_att_ln_temporal.bias',
      'vlm_att_projector_temporal.weight',
      'vlm_att_projector_temporal.bias',
    ]);
    const fresh = frameSelectRegistry.create({ kind: 'qformer-gumbel', numQueries: 4, numQueryTokens: 8, qformer: tinyQFormer }, deps());
    const weights = fixtureWeights([...prefixes, 'vlm_att_ln_spatial.']);
    expect(() => fresh.loadWeights(weights)).toThrow(WeightsError);
    weights.forEach((t) => t.dispose());
    fresh.dispose();
  });

  it('does not leak tensors over repeated runs', () => {
    const run = () => dispose(stage.apply({ features, question }, inference()));
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
  });
});
