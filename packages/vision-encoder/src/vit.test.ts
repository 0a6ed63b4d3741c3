import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, WeightsError, initBackend, tf } from '@bvllm/core';
import { loadVisionTransformer } from './load-vit.js';
import { VisionTransformer, vitConfigSchema } from './vit.js';

const fixtureDir = new URL('../../../../shared/fixtures/eva-vit/', import.meta.url).pathname;
const expected = JSON.parse(readFileSync(`${fixtureDir}expected.json`, 'utf8'));
const inputs = JSON.parse(readFileSync(`${fixtureDir}inputs.json`, 'utf8'));

/** Fixture pixels are NCHW (PyTorch); the encoder takes NHWC. */
const nhwc = (nchw: number[][][][]) => tf.tidy(() => tf.transpose(tf.tensor4d(nchw), [0, 2, 3, 1]) as tf.Tensor4D);
const maxAbsDiff = (t: tf.Tensor, want: unknown) => {
  const got = t.dataSync();
  const flat = (want as number[]).flat(4) as number[];
  expect(got.length).toBe(flat.length);
  return flat.reduce((m, v, i) => Math.max(m, Math.abs(got[i] - v)), 0);
};

beforeAll(async () => {
  await initBackend();
});

describe('EVA-ViT-g (InstructBLIP vision) against the eva-vit fixture (spec §1.0)', () => {
  for (const [layout, weightsFile] of [['instructblip', 'model.safetensors'], ['lavis', 'model_lavis.safetensors']] as const) {
    it(`${layout} checkpoint: embeddings, last block (no final norm), post_layernorm, pooler within 1e-4`, () => {
      const { model, layout: detected } = loadVisionTransformer(fixtureDir, { weightsFile });
      expect(detected).toBe(layout);
      const pixels = nhwc(inputs.pixel_values);
      const emb = model.embed(pixels);
      const out = model.forward(pixels, { postLayernorm: true, pooled: true });
      expect(maxAbsDiff(emb, expected.embeddings)).toBeLessThan(1e-4);
      expect(maxAbsDiff(out.lastBlock, expected.last_block_output)).toBeLessThan(1e-4);
      expect(maxAbsDiff(out.postLayernorm!, expected.post_layernorm)).toBeLessThan(1e-4);
      expect(maxAbsDiff(out.pooled!, expected.pooler_output)).toBeLessThan(1e-4);
      tf.dispose([pixels, emb, out.lastBlock, out.postLayernorm!, out.pooled!]);
      model.dispose();
    });
  }

  it('a 28-px checkpoint run at 42 px resizes its position table bicubically (B-VLLM 224 → 336)', () => {
    const { model } = loadVisionTransformer(fixtureDir, { imageSize: 42 });
    expect(model.grid).toBe(6);
    const c = expected.interpolated_42;
    expect(maxAbsDiff(model.store.get('embeddings.position_embedding'), c.position_embedding_resized)).toBeLessThan(1e-5);
    const pixels = nhwc(inputs.pixel_values_42);
    const out = model.forward(pixels, { postLayernorm: true });
    expect(maxAbsDiff(out.lastBlock, c.last_block_output)).toBeLessThan(1e-4);
    expect(maxAbsDiff(out.postLayernorm!, c.post_layernorm)).toBeLessThan(1e-4);
    tf.dispose([pixels, out.lastBlock, out.postLayernorm!]);
    model.dispose();
  });

  it('a mismatched checkpoint throws one WeightsError listing the mis-shaped keys', () => {
    let error: unknown;
    try {
      loadVisionTransformer(fixtureDir, { config: { hiddenSize: 32, intermediateSize: 64, numLayers: 3, numHeads: 4, imageSize: 28, patchSize: 7 } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WeightsError);
    expect((error as WeightsError).misshaped.map((m) => m.key)).toContain('encoder.layers.0.mlp.fc1.weight');
    let missing: unknown;
    try {
      loadVisionTransformer(fixtureDir, { config: { hiddenSize: 32, intermediateSize: 88, numLayers: 4, numHeads: 4, imageSize: 28, patchSize: 7 } });
    } catch (e) {
      missing = e;
    }
    expect((missing as WeightsError).missing).toContain('encoder.layers.3.self_attn.qkv.weight');
  });

  it('loading and disposing does not leak tensors', () => {
    loadVisionTransformer(fixtureDir, { weightsFile: 'model_lavis.safetensors' }).model.dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) loadVisionTransformer(fixtureDir, { weightsFile: 'model_lavis.safetensors', imageSize: 42 }).model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects pixels of the wrong size or layout', () => {
    const { model } = loadVisionTransformer(fixtureDir);
    const nchw = tf.zeros([1, 3, 28, 28]) as tf.Tensor4D;
    expect(() => model.forward(nchw)).toThrow(/pixels: expected \[B, 28, 28, 3\]/);
    nchw.dispose();
    model.dispose();
  });
});

describe('VisionTransformer from a plain config (training from scratch)', () => {
  const config = vitConfigSchema.parse({ hiddenSize: 16, intermediateSize: 32, numLayers: 2, numHeads: 2, imageSize: 16, patchSize: 8 });

  it('creates HF InstructBlipVision keys and is differentiable end to end (numeric gradient check)', () => {
    const model = new VisionTransformer(config, Rng.fromSeed(3));
    expect(model.store.keys()).toContain('encoder.layers.1.self_attn.qkv.bias');
    expect(model.store.keys()).toContain('embeddings.position_embedding');
    const pixels = tf.tidy(() => Rng.fromSeed(4).normal([2, 16, 16, 3]) as tf.Tensor4D);
    const loss = () => tf.tidy(() => tf.sum(tf.square(model.forward(pixels).lastBlock)) as tf.Scalar);
    const { grads } = tf.variableGrads(loss, model.store.entries().map(([, v]) => v));
    const key = 'encoder.layers.0.mlp.fc1.weight';
    const variable = model.store.get(key);
    const analytic = grads[variable.name].dataSync()[5];
    const base = variable.dataSync().slice();
    const eps = 1e-2;
    const at = (delta: number) => {
      const v = base.slice();
      v[5] += delta;
      variable.assign(tf.tensor(v, variable.shape));
      const l = loss();
      const value = l.dataSync()[0];
      l.dispose();
      return value;
    };
    const numeric = (at(eps) - at(-eps)) / (2 * eps);
    expect(Math.abs(analytic - numeric)).toBeLessThan(2e-2 * Math.max(1, Math.abs(numeric)));
    expect(Object.values(grads).every((g) => Number.isFinite(tf.sum(tf.abs(g)).dataSync()[0]))).toBe(true);
    tf.dispose(Object.values(grads));
    pixels.dispose();
    model.dispose();
  });

  it('forward does not leak tensors', () => {
    const model = new VisionTransformer(config, Rng.fromSeed(3));
    const pixels = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
    const run = () => {
      const out = model.forward(pixels, { postLayernorm: true, pooled: true });
      tf.dispose([out.lastBlock, out.postLayernorm!, out.pooled!]);
    };
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    pixels.dispose();
    model.dispose();
  });
});
