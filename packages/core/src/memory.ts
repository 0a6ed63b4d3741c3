import * as tf from '@tensorflow/tfjs-core';

/**
 * How many tensors `fn` leaves behind per batch of `reps` calls: the leak check every package's tests run on each
 * public op. `fn`'s results are disposed. One warm-up call comes first, because a first call may build caches
 * (a backend's kernels, a lazily made constant) that are not leaks.
 */
export function tensorGrowth(fn: () => tf.TensorContainer | void, reps = 5): number {
  tf.dispose(fn() ?? []);
  const before = tf.memory().numTensors;
  for (let i = 0; i < reps; i++) tf.dispose(fn() ?? []);
  return tf.memory().numTensors - before;
}
