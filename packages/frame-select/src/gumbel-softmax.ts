import { tf } from '@bvllm/core';

/** How frame weights are formed from the scores S (spec §1.1 (a), D4, D5). */
export interface FrameWeightOptions {
  /** Temperature τ. */
  tau: number;
  /** `gumbel`: softmax((S + G)/τ); `none`: softmax(S/τ); `hard`: one-hot argmax of S. */
  mode: 'gumbel' | 'none' | 'hard';
  /** One-hot argmax of the soft weights forward, their gradient backward (torch `gumbel_softmax(hard=True)`). */
  straightThrough: boolean;
  /** G, standard Gumbel noise `[K, T]`; read only in `gumbel` mode. */
  noise?: tf.Tensor;
}

/** Scores S `[K, T]` → frame weights `[K, T]`, each row summing to 1 (one-hot in `hard` and straight-through). */
export function frameWeightsFromScores(scores: tf.Tensor2D, options: FrameWeightOptions): tf.Tensor2D {
  return tf.tidy(() => {
    if (options.mode === 'hard') return oneHotArgmax(scores);
    const logits = options.mode === 'gumbel' ? tf.add(scores, options.noise!) : scores;
    const soft = tf.softmax(tf.div(logits, options.tau)) as tf.Tensor2D;
    return options.straightThrough ? straightThrough(soft) : soft;
  });
}

function oneHotArgmax(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => oneHotRows(tf.argMax(x, 1), x.shape[1]));
}

/** float32 one-hot rows. tf.oneHot is made int32 and then cast: the WASM kernel writes float32 output as integer bits. */
export function oneHotRows(indices: tf.Tensor, depth: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(indices, depth), 'float32') as tf.Tensor2D);
}

/** Forward: one-hot argmax of `soft`; backward: the identity, so the gradient is the soft weights' (y_hard − sg(y) + y). */
function straightThrough(soft: tf.Tensor2D): tf.Tensor2D {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor2D;
    return { value: oneHotArgmax(x), gradFunc: (dy: tf.Tensor) => dy };
  })(soft) as tf.Tensor2D;
}
