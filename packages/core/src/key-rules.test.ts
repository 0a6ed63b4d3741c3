import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from './backend.js';
import { applyKeyRules, mapKey, type KeyRule } from './key-rules.js';
import { tensorGrowth } from './memory.js';

beforeAll(async () => {
  await initBackend();
});

const rules: KeyRule[] = [
  { match: /\.position_ids$/, drop: true },
  { match: /^Qformer\.bert\.(.*)\.attention\.self\.(.*)$/, rename: '$1.attention.attention.$2' },
  { match: /patch_embedding\.weight$/, transform: (w) => tf.transpose(w, [1, 0]) },
  { match: /^never$/, drop: true },
];

describe('key rules', () => {
  it('mapKey: first match wins; drop, rename, or unchanged', () => {
    expect(mapKey('embeddings.position_ids', rules)).toBeUndefined();
    expect(mapKey('Qformer.bert.encoder.layer.0.attention.self.query.weight', rules)).toEqual({
      key: 'encoder.layer.0.attention.attention.query.weight',
      rule: 1,
    });
    expect(mapKey('embeddings.patch_embedding.weight', rules)).toEqual({ key: 'embeddings.patch_embedding.weight', rule: 2 });
    expect(mapKey('untouched', rules)).toEqual({ key: 'untouched', rule: -1 });
  });

  it('applyKeyRules renames, transforms, drops, disposes what it replaced, and reports used rules', () => {
    const input = new Map<string, tf.Tensor>([
      ['embeddings.position_ids', tf.tensor1d([0, 1])],
      ['Qformer.bert.encoder.layer.0.attention.self.key.bias', tf.tensor1d([1])],
      ['embeddings.patch_embedding.weight', tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3])],
    ]);
    const originals = [...input.values()];
    const { tensors, usedRules } = applyKeyRules(input, rules);
    expect([...tensors.keys()]).toEqual(['encoder.layer.0.attention.attention.key.bias', 'embeddings.patch_embedding.weight']);
    expect(tensors.get('embeddings.patch_embedding.weight')!.shape).toEqual([3, 2]);
    expect(Array.from(tensors.get('embeddings.patch_embedding.weight')!.dataSync())).toEqual([1, 4, 2, 5, 3, 6]);
    expect([...usedRules].sort()).toEqual([0, 1, 2]);
    expect(originals[0].isDisposed).toBe(true);
    expect(originals[1].isDisposed).toBe(false);
    expect(originals[2].isDisposed).toBe(true);
    tf.dispose([...tensors.values()]);
  });

  it('does not leak', () => {
    expect(
      tensorGrowth(() => {
        const { tensors } = applyKeyRules(
          new Map([
            ['a.position_ids', tf.ones([2])],
            ['x.patch_embedding.weight', tf.ones([2, 3])],
          ]),
          rules,
        );
        return [...tensors.values()];
      }),
    ).toBe(0);
  });
});
