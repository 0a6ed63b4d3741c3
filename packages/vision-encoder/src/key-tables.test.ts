import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, SafetensorsFile, initBackend, mapKey } from '@bvllm/core';
import type { VitLayout } from './hf-vit-config.js';
import { keyTables } from './load-vit.js';
import { VisionTransformer, vitConfigSchema } from './vit.js';

const fixtureDir = new URL('../../../../shared/fixtures/eva-vit/', import.meta.url).pathname;
const namesOf = (file: string) => {
  const f = SafetensorsFile.open(`${fixtureDir}${file}`);
  const keys = f.keys();
  f.close();
  return keys;
};
const tiny = { hiddenSize: 32, intermediateSize: 88, numLayers: 3, numHeads: 4, imageSize: 28, patchSize: 7 };

/** Full-checkpoint key lists: the fixture's real names, plus the wrappers a whole InstructBLIP/CLIP/SigLIP file adds. */
function keyLists(): Record<VitLayout, string[][]> {
  const hf = namesOf('model.safetensors');
  const lavis = namesOf('model_lavis.safetensors');
  const layers = (prefix: string, extra: string[]) => [
    ...['embeddings.patch_embedding.weight', 'embeddings.position_embedding.weight', 'post_layernorm.weight', 'post_layernorm.bias', ...extra].map((k) => prefix + k),
    ...[0, 1, 2].flatMap((i) =>
      ['layer_norm1', 'layer_norm2', 'self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.out_proj', 'mlp.fc1', 'mlp.fc2'].flatMap((n) => [
        `${prefix}encoder.layers.${i}.${n}.weight`,
        `${prefix}encoder.layers.${i}.${n}.bias`,
      ]),
    ),
  ];
  const head = ['head.probe', 'head.attention.in_proj_weight', 'head.attention.in_proj_bias', ...['head.attention.out_proj', 'head.layernorm', 'head.mlp.fc1', 'head.mlp.fc2'].flatMap((n) => [`${n}.weight`, `${n}.bias`])];
  return {
    instructblip: [hf, [...hf.map((k) => `vision_model.${k}`), 'query_tokens', 'qformer.layernorm.weight', 'language_projection.weight', 'language_model.lm_head.weight']],
    lavis: [lavis, [...lavis.map((k) => (k.startsWith('ln_vision') ? k : `visual_encoder.${k}`)), 'query_tokens', 'Qformer.bert.embeddings.LayerNorm.weight', 'llm_proj.weight']],
    clip: [[...layers('vision_model.', ['embeddings.class_embedding', 'pre_layrnorm.weight', 'pre_layrnorm.bias', 'embeddings.position_ids']), 'text_model.final_layer_norm.weight', 'text_projection.weight', 'visual_projection.weight', 'logit_scale']],
    siglip: [[...layers('vision_model.', ['embeddings.patch_embedding.bias', 'embeddings.position_ids', ...head]), 'text_model.head.weight', 'logit_scale', 'logit_bias']],
  };
}

beforeAll(async () => {
  await initBackend();
});

describe('checkpoint key tables', () => {
  for (const [layout, lists] of Object.entries(keyLists()) as [VitLayout, string[][]][]) {
    it(`${layout}: every key lands on one parameter, every parameter is covered, no rule is dead`, () => {
      const family = layout === 'lavis' ? 'instructblip' : layout;
      const model = new VisionTransformer(vitConfigSchema.parse({ ...tiny, family }), Rng.fromSeed(0), { init: 'zeros' });
      const expected = model.store.keys().sort();
      const used = new Set<number>();
      for (const keys of lists) {
        const mapped: string[] = [];
        for (const key of keys) {
          const m = mapKey(key, keyTables[layout]);
          if (m?.rule !== undefined && m.rule >= 0) used.add(m.rule);
          else if (!m) used.add(keyTables[layout].findIndex((r) => r.match.test(key)));
          if (m) mapped.push(m.key);
        }
        // LAVIS q_bias/v_bias pairs become one qkv.bias (fuseLavisQkvBias).
        const fused = mapped.filter((k) => !k.endsWith('.v_bias')).map((k) => k.replace(/\.q_bias$/, '.qkv.bias'));
        expect(new Set(fused).size).toBe(fused.length);
        expect(fused.sort()).toEqual(expected);
      }
      expect([...used].sort()).toEqual(keyTables[layout].map((_, i) => i));
      model.dispose();
    });
  }
});
