import { initBackend, layerNorm, Rng, tf } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { BvllmModel } from '@bvllm/pipeline';
import { testAssets, testConfig } from './test-model.js';
import { normaliseVisualTokens, pretrainSpatialSampler } from './sampler-pretrain.js';
import { PAIR_CLASSES } from '@bvllm/synth';
import { pairLoss, pretrainVision } from './vision-pretrain.js';
import { poolBatches } from './pretrain-batches.js';

beforeAll(async () => {
  await initBackend();
});

describe('spatial Q-Former pre-training and visual scale', () => {
  it('lowers the reconstruction loss, then centres visual tokens and scales them to the token-embedding RMS', async () => {
    const model = BvllmModel.create(testConfig({ spatialSample: { kind: 'qformer', numQueries: 6, tokenBudget: null, qformer: testConfig().spatialSample.qformer } }), testAssets(), 2);
    const pixels = tf.tidy(() => Rng.fromSeed(3).normal([8, 32, 32, 3]) as tf.Tensor4D);
    const losses = await pretrainSpatialSampler(model, poolBatches(pixels), { steps: 30, batchSize: 4, lr: 3e-3, seed: 0 });
    expect(losses.at(-1)!).toBeLessThan(losses[0]);
    normaliseVisualTokens(model, pixels);
    const rms = (t: tf.Tensor) => tf.tidy(() => tf.sqrt(tf.mean(tf.square(t))).dataSync()[0]);
    const visual = tf.tidy(() => {
      const { patches } = model.vision.encode(pixels);
      const merged = layerNorm(patches, model.store.get('vlm_att_ln_temporal.weight'), model.store.get('vlm_att_ln_temporal.bias'), 1e-5) as tf.Tensor3D;
      const question = model.tokenizeQuestion('');
      const { spatialTokens } = model.spatialSample.apply({ merged: { merged, groups: [...Array(8).keys()].map((i) => [i]), frameIndices: new Int32Array(8), timestampsSec: new Array(8).fill(0) }, question }, { training: false, rng: Rng.fromSeed(0) });
      const tokens = model.projector.apply({ spatialTokens });
      const mean = tf.mean(tokens, 0);
      return { meanRms: rms(mean), centredRms: rms(tf.sub(tokens, mean)) };
    });
    const embedRms = rms(model.store.get('model.embed_tokens.weight'));
    expect(visual.centredRms / embedRms).toBeCloseTo(1, 3);
    expect(visual.meanRms / embedRms).toBeLessThan(1e-4);
    pixels.dispose();
    model.dispose();
  });
});

describe('pairLoss', () => {
  it('sums binary cross-entropy over the pairs and averages over frames (hand-computed)', () => {
    const present = tf.tensor2d([Array.from({ length: PAIR_CLASSES }, (_, i) => (i < 2 ? 1 : 0)), new Array(PAIR_CLASSES).fill(0)]);
    // Zero logits: ln 2 for every pair of every frame.
    expect(pairLoss(present, tf.zerosLike(present)).dataSync()[0]).toBeCloseTo(PAIR_CLASSES * Math.log(2), 4);
    // Logit 2 on the first pair of frame 0 only: that term becomes ln(1 + e^-2), the rest stay ln 2.
    const logits = tf.tensor2d([[2, ...new Array(PAIR_CLASSES - 1).fill(0)], new Array(PAIR_CLASSES).fill(0)]);
    const expected = (Math.log(1 + Math.exp(-2)) + (2 * PAIR_CLASSES - 1) * Math.log(2)) / 2;
    expect(pairLoss(present, logits).dataSync()[0]).toBeCloseTo(expected, 4);
    tf.dispose([present, logits]);
  });
});

describe('vision pre-training with frame labels', () => {
  it('fits the pixel and label targets together: the loss falls, and the labelled loss exceeds the pixel-only loss', async () => {
    const rng = Rng.fromSeed(5);
    const pixels = tf.tidy(() => rng.normal([8, 32, 32, 3]) as tf.Tensor4D);
    // Two patches per frame (2 × 2 grid at 32 px, patch 16), labels drawn at random but fixed.
    const labels = {
      patchColour: tf.tensor2d(Array.from({ length: 32 }, () => rng.int(7)), [8, 4], 'int32'),
      patchShape: tf.tensor2d(Array.from({ length: 32 }, () => rng.int(6)), [8, 4], 'int32'),
      present: tf.tensor2d(Array.from({ length: 8 * PAIR_CLASSES }, () => rng.int(2)), [8, PAIR_CLASSES]),
      cellPairs: tf.zeros([8, 4 * PAIR_CLASSES]) as tf.Tensor2D,
    };
    const losses = async (withLabels: boolean) => {
      const model = BvllmModel.create(testConfig(), testAssets(), 4);
      const out = await pretrainVision(model.vision, poolBatches(pixels, withLabels ? labels : undefined), { steps: 40, batchSize: 8, lr: 3e-3, seed: 0 });
      model.dispose();
      return out;
    };
    const labelled = await losses(true);
    const plain = await losses(false);
    expect(labelled.at(-1)!).toBeLessThan(0.8 * labelled[0]);
    // Cross-entropy over 7 + 6 classes plus binary cross-entropy summed over the pairs (pairLoss) starts near
    // ln 7 + ln 6 + PAIR_CLASSES · ln 2 above the pixel loss; averaged over the pairs it would be ln 2 instead.
    const start = Math.log(7) + Math.log(6) + PAIR_CLASSES * Math.log(2);
    expect(labelled[0] - plain[0]).toBeGreaterThan(0.8 * start);
    expect(labelled[0] - plain[0]).toBeLessThan(1.2 * start);
    tf.dispose([pixels, ...Object.values(labels)]);
  });
});
