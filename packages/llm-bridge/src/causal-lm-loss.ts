import { ShapeError, assertShape, tf } from '@bvllm/core';
import { IGNORE_INDEX } from './constants.js';

/**
 * Next-token cross-entropy of a causal LM (HF `Qwen2ForCausalLM` with labels; spec §2): the logits at position t
 * predict `labels[t + 1]`, positions labelled {@link IGNORE_INDEX} are skipped, and the result is the mean over the
 * supervised tokens of the whole batch. Differentiable with respect to `logits`.
 * `logits` `[B, L, V]`; `labels` `[B, L]` (int32 tensor or nested arrays). Returns a scalar; 0 when nothing is
 * supervised (HF would give NaN, which would poison an accumulated gradient).
 */
export function causalLmLoss(logits: tf.Tensor, labels: tf.Tensor | number[][]): tf.Scalar {
  return tf.tidy(() => {
    const y = Array.isArray(labels) ? tf.tensor2d(labels, undefined, 'int32') : tf.cast(labels, 'int32');
    assertShape('logits', logits, ['B', 'L', 'V']);
    const [b, l, v] = logits.shape as [number, number, number];
    if (y.shape[0] !== b || y.shape[1] !== l) throw new ShapeError('labels', [b, l], y.shape);
    if (l < 2) return tf.scalar(0);
    const predictions = tf.reshape(tf.slice(logits, [0, 0, 0], [b, l - 1, v]), [-1, v]);
    const targets = tf.reshape(tf.slice(y, [0, 1], [b, l - 1]), [-1]);
    const supervised = tf.cast(tf.notEqual(targets, IGNORE_INDEX), 'float32');
    // Ignored positions get class 0 and weight 0, so oneHot never sees a negative index.
    const classes = tf.mul(targets, tf.cast(supervised, 'int32'));
    const logProbs = tf.logSoftmax(predictions);
    const negLogLikelihood = tf.neg(tf.sum(tf.mul(logProbs, tf.cast(tf.oneHot(classes, v), 'float32')), 1));
    return tf.div(tf.sum(tf.mul(negLogLikelihood, supervised)), tf.maximum(tf.sum(supervised), 1)) as tf.Scalar;
  });
}
