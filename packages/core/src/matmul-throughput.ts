import * as tf from '@tensorflow/tfjs-core';

/** One matmul timing: `gflops` counts 2·n³ floating-point operations per product. */
export interface MatmulThroughput {
  size: number;
  reps: number;
  secondsPerRep: number;
  gflops: number;
}

/**
 * Times an `n × n` float32 matmul on the current backend (for `bvllm doctor` and the bench). Warm-up runs first,
 * because the first calls pay for kernel setup and memory growth; each product is read back so asynchronous
 * backends are timed to completion.
 */
export async function measureMatmul(size: number, options: { warmup?: number; reps?: number } = {}): Promise<MatmulThroughput> {
  const { warmup = 1, reps = 3 } = options;
  const a = tf.randomUniform([size, size], -1, 1, 'float32', 1);
  const b = tf.randomUniform([size, size], -1, 1, 'float32', 2);
  const once = async () => {
    const c = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
    await c.data();
    c.dispose();
  };
  try {
    for (let i = 0; i < warmup; i++) await once();
    const start = performance.now();
    for (let i = 0; i < reps; i++) await once();
    const secondsPerRep = (performance.now() - start) / 1000 / reps;
    return { size, reps, secondsPerRep, gflops: (2 * size ** 3) / secondsPerRep / 1e9 };
  } finally {
    a.dispose();
    b.dispose();
  }
}
