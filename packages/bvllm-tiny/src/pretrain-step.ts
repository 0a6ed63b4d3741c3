/** The update step the recipe's pre-training loops share (tower, spatial Q-Former, token alignment). */
import type { tf } from '@bvllm/core';
import type { AdamW } from '@bvllm/trainer';

/**
 * One AdamW update of `params` from `grads` (as `tf.variableGrads` returns them, by variable name) at step `step` of
 * `steps`, the rate decaying from `lr` to 10% of it on a cosine: the low end keeps the last steps from undoing the fit.
 */
export function cosineUpdate(optimizer: AdamW, params: ReadonlyMap<string, tf.Variable>, grads: tf.NamedTensorMap, lr: number, step: number, steps: number): void {
  const keyed = new Map([...params].filter(([, v]) => grads[v.name]).map(([k, v]) => [k, grads[v.name]]));
  optimizer.update(keyed, cosineLr(lr, step, steps));
}

/** The rate of step `step` of `steps` on that cosine, from `lr` down to 10% of it. */
export function cosineLr(lr: number, step: number, steps: number): number {
  return lr * (0.1 + 0.45 * (1 + Math.cos((Math.PI * step) / steps)));
}
