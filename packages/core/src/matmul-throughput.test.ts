import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from './backend.js';
import { measureMatmul } from './matmul-throughput.js';

beforeAll(async () => {
  await initBackend();
});

describe('measureMatmul', () => {
  it('reports 2·n³ flops over the measured time per product', async () => {
    const r = await measureMatmul(32, { warmup: 1, reps: 2 });
    expect(r).toMatchObject({ size: 32, reps: 2 });
    expect(r.secondsPerRep).toBeGreaterThan(0);
    expect(r.gflops).toBeCloseTo((2 * 32 ** 3) / r.secondsPerRep / 1e9, 9);
  });

  it('frees its operands and products', async () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await measureMatmul(16, { warmup: 0, reps: 2 });
    expect(tf.memory().numTensors).toBe(before);
  });
});
