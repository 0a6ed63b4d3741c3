import { Rng, applyKeyRules, initBackend, tf, type KeyRule } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { spatialSampleRegistry } from './registry.js';
import { bvllmSpatialKeys, instructBlipSpatialKeys } from './spatial-keys.js';

const tiny = { hiddenSize: 8, numLayers: 2, numHeads: 2, intermediateSize: 12, vocabSize: 10, maxPositions: 8 };

describe('spatial checkpoint key tables', () => {
  beforeAll(async () => {
    await initBackend();
  });

  const stageKeys = () => {
    const stage = spatialSampleRegistry.create({ kind: 'qformer', numQueries: 4, qformer: tiny }, { rng: Rng.fromSeed(0), dims: { Cv: 6 } });
    const keys = [...stage.variables().keys()].sort();
    stage.dispose();
    return keys;
  };
  const run = (names: string[], rules: readonly KeyRule[]) => {
    const { tensors, usedRules } = applyKeyRules(new Map(names.map((k) => [k, tf.zeros([1])])), rules);
    const keys = [...tensors.keys()].sort();
    tensors.forEach((t) => t.dispose());
    return { keys, usedRules };
  };

  it('B-VLLM (LAVIS BERT names): every key lands on one variable, the unused LN drops, no rule unused', () => {
    const official = stageKeys().map((k) =>
      k
        .replace('vlm_att_encoder_spatial.', 'vlm_att_encoder_spatial.bert.')
        .replace('embeddings.layernorm', 'embeddings.LayerNorm')
        .replace(/(attention|crossattention)\.attention\.(query|key|value)/, '$1.self.$2'),
    );
    official.push('vlm_att_ln_spatial.weight', 'vlm_att_encoder_spatial.bert.embeddings.position_ids', 'vlm_att_encoder_spatial.cls.predictions.bias');
    const { keys, usedRules } = run(official, bvllmSpatialKeys);
    expect(keys).toEqual(stageKeys());
    expect(usedRules.size).toBe(bvllmSpatialKeys.length);
  });

  it('HF InstructBLIP (D14): Q-Former and queries land; the rest drops', () => {
    const hf = stageKeys().map((k) => (k === 'vlm_att_query_spatial' ? 'query_tokens' : k.replace('vlm_att_encoder_spatial.', 'qformer.')));
    hf.push('qformer.embeddings.position_ids', 'vision_model.post_layernorm.weight', 'language_model.lm_head.weight');
    const { keys, usedRules } = run(hf, instructBlipSpatialKeys);
    expect(keys).toEqual(stageKeys());
    expect(usedRules.size).toBe(instructBlipSpatialKeys.length);
  });
});
