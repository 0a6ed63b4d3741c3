import { Rng, initBackend, tf, type FrameFeatures, type QuestionTokens } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QFormerGumbelSelect } from './qformer-gumbel-select.js';
import { frameSelectRegistry } from './registry.js';

// A tiny random selector: Cv 6, Cq 8, one layer (with cross-attention), K 2 of 3 queries, T 5 frames of N 3 patches.
const T = 5;
const K = 2;
const tiny = { hiddenSize: 8, numLayers: 1, numHeads: 2, intermediateSize: 12, vocabSize: 10, maxPositions: 8, crossAttentionFrequency: 1, layerNormEps: 1e-12, hiddenAct: 'gelu' as const };

describe('qformer-gumbel gradients through the soft weights (spec §2: the selector learns only through W)', () => {
  let stage: QFormerGumbelSelect;
  let features: FrameFeatures;
  let question: QuestionTokens;
  let noise: tf.Tensor2D;
  let probeW: tf.Tensor;
  let probeX: tf.Tensor;

  beforeAll(async () => {
    await initBackend();
    const rng = Rng.fromSeed(11);
    // logitScale 1 and τ 1 keep W away from one-hot, so its gradient is large enough to check in float32.
    stage = frameSelectRegistry.create({ kind: 'qformer-gumbel', numQueries: K, numQueryTokens: 3, tau: 1, logitScale: 1, qformer: tiny }, { rng, dims: { Cv: 6 } }) as QFormerGumbelSelect;
    // Move the LayerNorm off identity so its weight and bias gradients are not degenerate.
    for (const [key, v] of stage.variables()) if (key.startsWith('vlm_att_ln_temporal')) v.assign(tf.add(v, rng.normal(v.shape, 0.3)));
    // Queries start at N(0, 0.02); the embedding LayerNorm rescales them by ~50, far too curved for a 1e-2 step.
    stage.variables().get('vlm_att_query_temporal')!.assign(rng.normal([1, 3, 8]));
    features = { cls: rng.normal([T, 6]) as tf.Tensor2D, patches: rng.normal([T, 3, 6]) as tf.Tensor3D, timestampsSec: [0, 1, 2, 3, 4] };
    question = { inputIds: tf.tensor2d([[1, 4, 7, 2]], undefined, 'int32'), attentionMask: tf.ones([1, 4], 'int32') as tf.Tensor2D };
    noise = rng.gumbel([K, T]) as tf.Tensor2D;
    probeW = rng.normal([K, T]);
    probeX = rng.normal([K, 3, 6]);
  });
  afterAll(() => stage.dispose());

  /** A scalar that depends on both outputs: Σ W·Pw + Σ X·Px. */
  const loss = () =>
    tf.tidy(() => {
      const out = stage.apply({ features, question, gumbelNoise: noise }, { training: true, rng: Rng.fromSeed(0) });
      return tf.add(tf.sum(tf.mul(out.frameWeights, probeW)), tf.sum(tf.mul(out.selected, probeX))) as tf.Scalar;
    });
  const lossValue = () => {
    const l = loss();
    const v = l.dataSync()[0];
    l.dispose();
    return v;
  };

  it.each([
    'vlm_att_query_temporal',
    'vlm_att_ln_temporal.weight',
    'vlm_att_ln_temporal.bias',
    'vlm_att_projector_temporal.weight',
    'vlm_att_encoder_temporal.encoder.layer.0.crossattention.attention.key.weight',
  ])('%s: tf.grads equals central differences', (key) => {
    const variable = stage.variables().get(key)!;
    const { value, grads } = tf.variableGrads(loss, [variable]);
    const analytic = grads[variable.name].dataSync();
    value.dispose();
    const base = variable.dataSync().slice();
    const h = 1e-2;
    // Only the first K = 2 query rows are used, so their entries come first in vlm_att_query_temporal.
    const probes = [0, 3, Math.min(5, base.length - 1), base.length >> 2];
    let checked = 0;
    for (const i of probes) {
      const at = (delta: number) => {
        const moved = base.slice();
        moved[i] += delta;
        variable.assign(tf.tensor(moved, variable.shape));
        return lossValue();
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      variable.assign(tf.tensor(base, variable.shape));
      expect(Math.abs(numeric - analytic[i])).toBeLessThan(5e-3 + 2e-2 * Math.abs(analytic[i]));
      if (Math.abs(analytic[i]) > 1e-3) checked++;
    }
    // At least some probed entries carry a real gradient, so the comparison is not 0 ≈ 0.
    expect(checked).toBeGreaterThan(0);
    tf.dispose(grads[variable.name]);
  });

  it('unused query rows (beyond K) get exactly zero gradient', () => {
    const queries = stage.variables().get('vlm_att_query_temporal')!;
    const { value, grads } = tf.variableGrads(loss, [queries]);
    const g = grads[queries.name].arraySync() as number[][][];
    expect(g[0][K].every((v) => v === 0)).toBe(true);
    expect(g[0][0].some((v) => v !== 0)).toBe(true);
    tf.dispose([value, grads[queries.name]]);
  });
});
