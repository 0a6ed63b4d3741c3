import { fileURLToPath } from 'node:url';
import { Rng, TensorSource, initBackend, mapKey, readHfConfig } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { qwen2ConfigFromHf } from './qwen2-config.js';
import { qwen2KeyRules } from './qwen2-keys.js';
import { Qwen2Model } from './qwen2-model.js';

beforeAll(async () => {
  await initBackend();
});

const fixture = (name: string) => fileURLToPath(new URL(`../../../../shared/fixtures/${name}/`, import.meta.url));

describe('qwen2 key table', () => {
  for (const [name, tied] of [
    ['qwen2-tiny-s2', false],
    ['qwen2-tiny-s3', true],
  ] as const) {
    it(`${name}: every checkpoint key lands on one variable, and every rule is used`, () => {
      const source = TensorSource.fromDir(fixture(name));
      // Older exports also carry rotary buffers, and tied ones sometimes a copy of the head.
      const keys = [...source.keys(), 'model.layers.0.self_attn.rotary_emb.inv_freq', ...(tied ? ['lm_head.weight'] : [])];
      source.close();
      const rules = qwen2KeyRules(tied);
      const used = new Set<number>();
      const landed: string[] = [];
      for (const key of keys) {
        const mapped = mapKey(key, rules);
        const rule = rules.findIndex((r) => r.match.test(key));
        if (rule !== -1) used.add(rule);
        if (mapped) landed.push(mapped.key);
      }
      const model = Qwen2Model.create(qwen2ConfigFromHf(readHfConfig(fixture(name))), Rng.fromSeed(0));
      expect(landed.sort()).toEqual(model.store.keys().sort());
      expect(new Set(landed).size).toBe(landed.length);
      expect(used.size).toBe(rules.length);
      model.dispose();
    });
  }
});
