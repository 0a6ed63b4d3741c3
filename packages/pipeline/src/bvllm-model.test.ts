import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, Rng, UnknownKindError, initBackend, readSafetensors, tf, type FrameFeatures } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { BvllmModel } from './bvllm-model.js';
import { testAssets, testConfig } from './test-model.js';

const fixture = fileURLToPath(new URL('../../../../shared/fixtures/bvllm-visual/', import.meta.url));
const inputs = JSON.parse(readFileSync(`${fixture}inputs.json`, 'utf8')) as { frame_features: number[][][]; input_ids: number[][]; attention_mask: number[][]; gumbel_noise: number[][] };
const expected = JSON.parse(readFileSync(`${fixture}expected.json`, 'utf8')) as {
  V: number[][];
  Z: number[][][];
  temporal_merge: { groups: number[][] };
  sorted_variant: { V: number[][] };
  budget_variant: { V: number[][] };
};

function maxAbsDiff(a: tf.Tensor, b: number[][]): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, tf.tensor(b)))).dataSync()[0]);
}

/** The fixture's visual-path weights loaded into a whole model (the vision tower and LLM stay random). */
function fixtureModel(overrides: Parameters<typeof testConfig>[0] = {}): BvllmModel {
  const model = BvllmModel.create(testConfig(overrides), testAssets());
  const weights = readSafetensors(`${fixture}model.safetensors`, (key) => !key.startsWith('vlm_att_ln_spatial.'));
  // vlm_att_ln_spatial is built but never used by the reference forward (spec §1.0, §7.10), so we have no such key.
  model.store.load(weights, { allowMissing: (key) => key.startsWith('vision_tower.') || key.startsWith('model.') || key.startsWith('lm_head.') });
  tf.dispose([...weights.values()]);
  return model;
}

function fixtureInputs() {
  const frames = tf.tensor3d(inputs.frame_features);
  const features: FrameFeatures = {
    cls: tf.reshape(tf.slice(frames, [0, 0, 0], [7, 1, 24]), [7, 24]) as tf.Tensor2D,
    patches: tf.slice(frames, [0, 1, 0], [7, 8, 24]) as tf.Tensor3D,
    timestampsSec: [0, 1, 2, 3, 4, 5, 6].map((t) => t + 0.5),
  };
  frames.dispose();
  const question = { inputIds: tf.tensor2d(inputs.input_ids, undefined, 'int32'), attentionMask: tf.tensor2d(inputs.attention_mask, undefined, 'int32') };
  return { features, question, noise: tf.tensor2d(inputs.gumbel_noise) };
}

beforeAll(async () => {
  await initBackend();
});

describe('BvllmModel visual path against the bvllm-visual fixture (spec §1.1 (a)–(e))', () => {
  const cases = [
    { name: 'official query order', overrides: { tokenMerge: { kind: 'row-cosine', order: 'query' } }, v: () => expected.V },
    { name: 'time order (D3)', overrides: { tokenMerge: { kind: 'row-cosine', order: 'time' } }, v: () => expected.sorted_variant.V },
    {
      name: 'ToMe budget θ = 6 (D12)',
      overrides: { tokenMerge: { kind: 'row-cosine', order: 'query' }, spatialSample: { kind: 'qformer', numQueries: 6, tokenBudget: 6, qformer: testConfig().spatialSample.qformer } },
      v: () => expected.budget_variant.V,
    },
  ];
  for (const c of cases)
    it(`matches V within 1e-4 (${c.name})`, () => {
      const model = fixtureModel(c.overrides as Parameters<typeof testConfig>[0]);
      const { features, question, noise } = fixtureInputs();
      const path = model.visualPath(features, question, { training: false, rng: Rng.fromSeed(0) }, { gumbelNoise: noise });
      if (c.name === 'official query order') expect(path.merged.groups).toEqual(expected.temporal_merge.groups);
      expect(path.visualEmbeds.shape).toEqual([c.v().length, 40]);
      expect(maxAbsDiff(path.visualEmbeds, c.v())).toBeLessThan(1e-4);
      tf.dispose([path.selection.frameWeights, path.selection.selected, path.merged.merged, path.spatialTokens, path.visualEmbeds, features.cls, features.patches, question.inputIds, question.attentionMask, noise]);
      model.dispose();
    });
});

describe('BvllmModel assembly', () => {
  it('swaps a stage by config (ablation) and reports invalid or unknown kinds with the slot path', () => {
    const uniform = BvllmModel.create(testConfig({ frameSelect: { kind: 'uniform', numFrames: 2 }, spatialSample: { kind: 'pool', outputGrid: [2, 2], patchGrid: [2, 4] } }), testAssets());
    const { features, question, noise } = fixtureInputs();
    const path = uniform.visualPath(features, question, { training: false, rng: Rng.fromSeed(0) });
    // Midpoints of 2 equal segments of [0, 6] are 1.5 and 4.5, rounded half up (VideoLLaMA2's frame_sample); each
    // frame's 2 × 4 patch grid is pooled to 2 × 2 cells of width Cv, then projected to D.
    expect([...path.selection.frameIndices]).toEqual([2, 5]);
    expect(path.spatialTokens.shape).toEqual([2, 4, 24]);
    expect(path.visualEmbeds.shape).toEqual([8, 40]);
    tf.dispose([path.selection.frameWeights, path.selection.selected, path.merged.merged, path.spatialTokens, path.visualEmbeds, features.cls, features.patches, question.inputIds, question.attentionMask, noise]);
    uniform.dispose();
    expect(() => BvllmModel.create(testConfig({ frameSelect: { kind: 'top-k' } }), testAssets())).toThrow(UnknownKindError);
    let error: unknown;
    try {
      BvllmModel.create(testConfig({ tokenMerge: { kind: 'row-cosine', mergeThreshold: 2 } }), testAssets());
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path[0]).toBe('tokenMerge');
    expect((error as ConfigError).message).toMatch(/tokenMerge.*mergeThreshold/);
  });

  it('trains only the spec §2 sets: stage 1 the temporal side + projector, stage 2 adds the spatial side and LoRA', () => {
    const model = BvllmModel.create(testConfig(), testAssets());
    const s1 = model.store.keys().filter(model.trainable('stage1'));
    expect(s1.some((k) => k.startsWith('vlm_att_encoder_temporal.'))).toBe(true);
    expect(s1).toContain('vlm_att_val_projector_spatial.weight');
    expect(s1.some((k) => k.startsWith('vlm_att_encoder_spatial.') || k.startsWith('vision_tower.') || k.startsWith('model.'))).toBe(false);
    model.attachLora({ r: 2, alpha: 4, dropout: 0 }, Rng.fromSeed(1));
    const s2 = model.store.keys().filter(model.trainable('stage2'));
    expect(s2.some((k) => k.startsWith('vlm_att_encoder_spatial.'))).toBe(true);
    expect(s2.some((k) => k.endsWith('.lora_A.weight'))).toBe(true);
    expect(s2.some((k) => k.startsWith('vision_tower.') || /^model\..*(?<!lora_[AB]\.weight)$/.test(k))).toBe(false);
    model.dispose();
  });

  it('gives a finite loss whose gradient reaches the selector and the projector, and leaks no tensors', () => {
    const model = BvllmModel.create(testConfig(), testAssets());
    const { features, question, noise } = fixtureInputs();
    const ids = model.assets.tokenizer.encode('What colour is the square? red');
    const sample = { features, question, inputIds: [-201, ...ids], labels: [-100, ...ids] };
    const keys = model.store.keys().filter(model.trainable('stage1'));
    const vars = keys.map((k) => model.store.get(k));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) {
      const { value, grads } = tf.variableGrads(() => model.loss([sample], { training: true, rng: Rng.fromSeed(i) }), vars);
      expect(Number.isFinite(value.dataSync()[0])).toBe(true);
      const norm = (key: string) => tf.tidy(() => tf.norm(grads[model.store.get(key).name]).dataSync()[0]);
      expect(norm('vlm_att_query_temporal')).toBeGreaterThan(0);
      expect(norm('vlm_att_projector_spatial.weight')).toBeGreaterThan(0);
      tf.dispose([value, ...Object.values(grads)]);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([features.cls, features.patches, question.inputIds, question.attentionMask, noise]);
    model.dispose();
  });
});
