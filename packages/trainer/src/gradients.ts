/** Gradient accumulation over micro-batches and global-norm clipping, as HF's Trainer does between updates. */
import { tf } from '@bvllm/core';

/**
 * Sums gradients of successive micro-batches by parameter key; `mean()` divides by their count, which equals HF's
 * scaling of each micro-batch loss by `1 / gradient_accumulation_steps` when every micro-batch is present.
 */
export class GradientAccumulator {
  private readonly sums = new Map<string, tf.Tensor>();
  private count = 0;

  get microBatches(): number {
    return this.count;
  }

  /** Adds `grads` (not disposed; the caller keeps ownership). */
  add(grads: ReadonlyMap<string, tf.Tensor>): void {
    for (const [key, g] of grads) {
      const previous = this.sums.get(key);
      this.sums.set(key, previous ? tf.add(previous, g) : tf.clone(g));
      previous?.dispose();
    }
    this.count += 1;
  }

  /** The mean gradient per key (owned by the caller); resets the accumulator. */
  mean(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [key, sum] of this.sums) {
      out.set(key, tf.div(sum, this.count));
      sum.dispose();
    }
    this.sums.clear();
    this.count = 0;
    return out;
  }

  dispose(): void {
    for (const t of this.sums.values()) t.dispose();
    this.sums.clear();
    this.count = 0;
  }
}

/**
 * `torch.nn.utils.clip_grad_norm_` with the 2-norm: the total norm over all gradients, then every gradient scaled by
 * `min(1, maxNorm / (total + 1e-6))`. Returns the pre-clip norm (what HF logs as `grad_norm`) and new gradients;
 * the input gradients are disposed.
 */
export function clipGradNorm(grads: Map<string, tf.Tensor>, maxNorm: number): { totalNorm: number; grads: Map<string, tf.Tensor> } {
  if (grads.size === 0) return { totalNorm: 0, grads };
  const squares = tf.tidy(() => tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g)))));
  const totalNorm = Math.sqrt(squares.dataSync()[0]);
  squares.dispose();
  const coefficient = Math.min(1, maxNorm / (totalNorm + 1e-6));
  const out = new Map<string, tf.Tensor>();
  for (const [key, g] of grads) {
    out.set(key, tf.mul(g, coefficient));
    g.dispose();
  }
  return { totalNorm, grads: out };
}
