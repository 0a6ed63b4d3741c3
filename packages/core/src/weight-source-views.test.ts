import { describe, expect, it } from 'vitest';
import { tf } from './backend.js';
import type { KeyRule } from './key-rules.js';
import { randomSource } from './weight-source-random.js';
import { WeightSourceError } from './weight-source-error.js';
import { overlaySource, renamedSource } from './weight-source-views.js';
import type { WeightSource } from './weight-source.js';

/** An in-memory source that counts reads and closes, so laziness and ownership can be checked. */
function memorySource(tensors: Record<string, number[]>, name = 'mem') {
  const reads: string[] = [];
  let closed = 0;
  const source: WeightSource = {
    keys: () => Object.keys(tensors),
    has: (key) => key in tensors,
    info: (key) => ({ dtype: 'F32', shape: [tensors[key].length] }),
    read: (key) => {
      reads.push(key);
      return Float32Array.from(tensors[key]);
    },
    origin: () => name,
    close: () => {
      closed++;
    },
  };
  return { source, reads, closes: () => closed };
}

function thrown(attempt: () => unknown): WeightSourceError {
  try {
    attempt();
  } catch (error) {
    if (error instanceof WeightSourceError) return error;
    throw error;
  }
  throw new Error('expected a WeightSourceError');
}

describe('renamedSource', () => {
  const rules: KeyRule[] = [
    { match: /\.rotary_emb\.inv_freq$/, drop: true },
    { match: /^language_model\.(.*)$/, rename: '$1' },
  ];

  it('drops and renames keys without reading, and reads through under the new names', () => {
    const { source, reads, closes } = memorySource({ 'language_model.model.norm.weight': [1, 2], 'model.layers.0.rotary_emb.inv_freq': [3], lm_head: [4] }, 'ckpt');
    const view = renamedSource(source, rules);
    expect(view.keys()).toEqual(['model.norm.weight', 'lm_head']);
    expect(view.has('model.layers.0.rotary_emb.inv_freq')).toBe(false);
    expect(view.info('model.norm.weight')).toEqual({ dtype: 'F32', shape: [2] });
    expect(reads).toEqual([]);
    expect(view.read('model.norm.weight')).toEqual(Float32Array.of(1, 2));
    expect(view.origin('model.norm.weight')).toBe('ckpt (as language_model.model.norm.weight)');
    expect(view.origin('lm_head')).toBe('ckpt');
    const missing = thrown(() => view.read('language_model.model.norm.weight'));
    expect(missing).toMatchObject({ problem: 'missing-key', keys: ['language_model.model.norm.weight'] });
    view.close();
    expect(closes()).toBe(1);
  });

  it('refuses a rule that transforms tensors', () => {
    const { source } = memorySource({ w: [1] });
    const error = thrown(() => renamedSource(source, [{ match: /^w$/, transform: (t: tf.Tensor) => t }]));
    expect(error.problem).toBe('transform-rule');
    expect(error.message).toContain('/^w$/');
  });

  it('lists every pair of keys renamed onto one', () => {
    const { source } = memorySource({ 'a.x': [1], 'b.x': [2], 'a.y': [3], 'b.y': [4] });
    const error = thrown(() => renamedSource(source, [{ match: /^[ab]\.(.*)$/, rename: '$1' }]).keys());
    expect(error).toMatchObject({ problem: 'duplicate-key', keys: ['x ← a.x, b.x', 'y ← a.y, b.y'] });
  });
});

describe('overlaySource', () => {
  it('reads each key from the first source that has it, and closes them all', () => {
    const first = memorySource({ a: [1], b: [2] }, 'first');
    const second = memorySource({ b: [20], c: [30] }, 'second');
    const view = overlaySource([first.source, second.source]);
    expect(view.keys()).toEqual(['a', 'b', 'c']);
    expect(view.read('b')).toEqual(Float32Array.of(2));
    expect(view.read('c')).toEqual(Float32Array.of(30));
    expect(view.origin('b')).toBe('first');
    expect(view.origin('c')).toBe('second');
    expect(second.reads).toEqual(['c']);
    expect(thrown(() => view.info('d'))).toMatchObject({ problem: 'missing-key', keys: ['d'] });
    view.close();
    expect([first.closes(), second.closes()]).toEqual([1, 1]);
  });

  it('fills what a checkpoint lacks from seeded random values', () => {
    const ckpt = memorySource({ 'proj.weight': [1, 2] });
    const fills = randomSource([{ key: 'proj.weight', shape: [2], init: 'zeros' }, { key: 'proj.bias', shape: [2], init: 'zeros' }], 0);
    const view = overlaySource([ckpt.source, fills]);
    expect(view.read('proj.weight')).toEqual(Float32Array.of(1, 2));
    expect(view.origin('proj.bias')).toBe('random(zeros, seed 0)');
  });
});
