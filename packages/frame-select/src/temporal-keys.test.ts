import { Rng, applyKeyRules, initBackend, tf } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { frameSelectRegistry } from './registry.js';
import { bvllmTemporalKeys, instructBlipTemporalKeys } from './temporal-keys.js';

const tiny = { hiddenSize: 8, numLayers: 2, numHeads: 2, intermediateSize: 12, vocabSize: 10, maxPositions: 8 };

describe('temporal checkpoint key tables', () => {
  beforeAll(async () => {
    await initBackend();
  });

  const stageKeys = () => {
    const stage = frameSelectRegistry.create({ kind: 'qformer-gumbel', numQueries: 2, numQueryTokens: 4, qformer: tiny }, { rng: Rng.fromSeed(0), dims: { Cv: 6 } });
    const keys = [...stage.variables().keys()].sort();
    stage.dispose();
    return keys;
  };
  const run = (names: string[], rules: typeof bvllmTemporalKeys) => {
    const { tensors, usedRules } = applyKeyRules(new Map(names.map((k) => [k, tf.zeros([1])])), rules);
    const keys = [...tensors.keys()].sort();
    tensors.forEach((t) => t.dispose());
    return { keys, usedRules };
  };

  it('B-VLLM (LAVIS BERT names): every key lands on one variable, no rule unused', () => {
    const official = stageKeys().map((k) =>
      k
        .replace('vlm_att_encoder_temporal.', 'vlm_att_encoder_temporal.bert.')
        .replace('embeddings.layernorm', 'embeddings.LayerNorm')
        .replace(/(attention|crossattention)\.attention\.(query|key|value)/, '$1.self.$2'),
    );
    official.push('vlm_att_encoder_temporal.bert.embeddings.position_ids', 'vlm_att_encoder_temporal.cls.predictions.bias');
    const { keys, usedRules } = run(official, bvllmTemporalKeys);
    expect(keys).toEqual(stageKeys());
    expect(usedRules.size).toBe(bvllmTemporalKeys.length);
  });

  it('HF InstructBLIP (D14): Q-Former, queries and post_layernorm land; the tower and LLM drop; only the projector is left', () => {
    const hf = stageKeys()
      .filter((k) => !k.startsWith('vlm_att_projector_temporal'))
      .map((k) =>
        k === 'vlm_att_query_temporal' ? 'query_tokens' : k.replace('vlm_att_encoder_temporal.', 'qformer.').replace('vlm_att_ln_temporal.', 'vision_model.post_layernorm.'),
      );
    hf.push('qformer.embeddings.position_ids', 'vision_model.embeddings.patch_embedding.weight', 'language_model.lm_head.weight', 'language_projection.weight');
    const { keys, usedRules } = run(hf, instructBlipTemporalKeys);
    expect(keys).toEqual(stageKeys().filter((k) => !k.startsWith('vlm_att_projector_temporal')));
    expect(usedRules.size).toBe(instructBlipTemporalKeys.length);
  });
});
