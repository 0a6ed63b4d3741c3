import { InvalidArgumentError, Rng, initBackend, tf } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { BvllmModel } from '@bvllm/pipeline';
import { testAssets, testConfig } from './test-model.js';
import { PAIR_CLASSES } from '@bvllm/synth';
import { CELLS, labelTokens } from './label-tokens.js';
import { poolBatches } from './pretrain-batches.js';
import { frameVisualTokens } from './sampler-pretrain.js';
import { alignVisualTokens } from './token-alignment.js';

beforeAll(async () => {
  await initBackend();
});

/** Eight random frames, each with a random pair (or none) in each of its 4 cells. */
function labelledPool(rng: Rng) {
  const pixels = tf.tidy(() => rng.normal([8, 32, 32, 3]) as tf.Tensor4D);
  const cells = new Float32Array(8 * CELLS * PAIR_CLASSES);
  for (let c = 0; c < 8 * CELLS; c++) {
    const p = rng.int(PAIR_CLASSES + 4);
    if (p < PAIR_CLASSES) cells[c * PAIR_CLASSES + p] = 1;
  }
  const labels = {
    patchColour: tf.zeros([8, 4], 'int32') as tf.Tensor2D,
    patchShape: tf.zeros([8, 4], 'int32') as tf.Tensor2D,
    present: tf.zeros([8, PAIR_CLASSES]) as tf.Tensor2D,
    cellPairs: tf.tensor2d(cells, [8, CELLS * PAIR_CLASSES]),
  };
  return { pixels, labels };
}

describe('alignVisualTokens (the visual path learns to say what the label tokens say)', () => {
  const config = testConfig({ spatialSample: { kind: 'qformer', numQueries: CELLS, tokenBudget: null, qformer: { hiddenSize: 32, numLayers: 2, numHeads: 2, intermediateSize: 64, vocabSize: 100, maxPositions: 64, crossAttentionFrequency: 1 } } });

  it('fits the label tokens of labelled frames, training only the spatial sampler and the projector', async () => {
    const model = BvllmModel.create(config, testAssets(), 3);
    const { pixels, labels } = labelledPool(Rng.fromSeed(4));
    const before = new Map([...model.store.entries()].map(([k, v]) => [k, v.clone()]));
    const losses = await alignVisualTokens(model, poolBatches(pixels, labels), { steps: 60, batchSize: 8, lr: 3e-3, seed: 0 });
    expect(losses.at(-1)!).toBeLessThan(0.5 * losses[0]);
    // The loss is the error relative to the targets' mean square: recompute the last one by hand.
    const target = labelTokens(model, tf.reshape(labels.cellPairs, [-1, PAIR_CLASSES]) as tf.Tensor2D);
    const tokens = frameVisualTokens(model, pixels, false, Rng.fromSeed(0));
    expect(tokens.shape).toEqual([8 * CELLS, 40]);
    const relative = tf.tidy(() => tf.div(tf.mean(tf.square(tf.sub(tokens, target))), tf.mean(tf.square(target))).dataSync()[0]);
    expect(relative).toBeLessThan(0.5 * losses[0]);
    const moved = [...model.store.entries()].filter(([key, v]) => tf.tidy(() => tf.max(tf.abs(tf.sub(v, before.get(key)!))).dataSync()[0]) > 0).map(([key]) => key);
    // The sampler's text-side weights get no gradient (the frames are read with an empty question); all else is frozen.
    expect(moved.filter((key) => !/^vlm_att_(encoder|query)_spatial|^vlm_att_(val_)?projector_spatial/.test(key))).toEqual([]);
    expect(moved).toContain('vlm_att_query_spatial');
    expect(moved).toEqual(expect.arrayContaining(['vlm_att_projector_spatial.weight', 'vlm_att_val_projector_spatial.weight']));
    expect(moved.filter((key) => key.startsWith('vlm_att_encoder_spatial')).length).toBeGreaterThan(10);
    tf.dispose([pixels, target, tokens, ...Object.values(labels), ...before.values()]);
    model.dispose();
  });

  it('refuses a sampler whose tokens per frame are not the label tokens per frame, and unlabelled frames, with a typed error', async () => {
    const model = BvllmModel.create(testConfig(), testAssets(), 3);
    const { pixels, labels } = labelledPool(Rng.fromSeed(4));
    await expect(alignVisualTokens(model, poolBatches(pixels, labels), { steps: 1, batchSize: 8, lr: 1e-3, seed: 0 })).rejects.toThrow(InvalidArgumentError);
    await expect(alignVisualTokens(model, poolBatches(pixels, labels), { steps: 1, batchSize: 8, lr: 1e-3, seed: 0 })).rejects.toThrow(/3 visual tokens per frame; the label tokens are 4/);
    // Frames without labels have nothing to align to.
    await expect(alignVisualTokens(model, poolBatches(pixels), { steps: 1, batchSize: 8, lr: 1e-3, seed: 0 })).rejects.toThrow(/labelled frames/);
    tf.dispose([pixels, ...Object.values(labels)]);
    model.dispose();
  });
});
