import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from './backend.js';
import { tensorGrowth } from './memory.js';

beforeAll(async () => {
  await initBackend();
});

describe('tensorGrowth', () => {
  it('is 0 for an op whose intermediates are tidied and result disposed', () => {
    expect(tensorGrowth(() => tf.tidy(() => tf.add(tf.ones([2]), tf.ones([2]))))).toBe(0);
  });

  it('counts each tensor a leaky op leaves behind', () => {
    const kept: tf.Tensor[] = [];
    expect(tensorGrowth(() => void kept.push(tf.ones([2])), 4)).toBe(4);
    tf.dispose(kept);
  });

  it('ignores what only the warm-up call allocates', () => {
    let cache: tf.Tensor | undefined;
    expect(tensorGrowth(() => tf.mul((cache ??= tf.ones([3])), 2))).toBe(0);
    cache!.dispose();
  });
});
