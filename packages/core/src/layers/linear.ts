import * as tf from '@tensorflow/tfjs-core';
import type { Init, ParameterStore } from '../parameter-store.js';
import { matMulPlain } from './matmul.js';

/** Anything that maps `[..., in]` to `[..., out]`; LoRA wraps a {@link Linear} behind this. */
export interface LinearLike {
  readonly inFeatures: number;
  readonly outFeatures: number;
  apply(x: tf.Tensor): tf.Tensor;
}

/**
 * `y = x · Wᵀ + b` with `W` stored `[out, in]` as PyTorch and Hugging Face store it, so checkpoints load without a
 * transpose.
 * Keys: `${prefix}.weight` [out, in], `${prefix}.bias` [out].
 */
export class Linear implements LinearLike {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;

  constructor(
    store: ParameterStore,
    readonly prefix: string,
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: { bias?: boolean; init?: Init; trainable?: boolean } = {},
  ) {
    // PyTorch's default nn.Linear init (kaiming-uniform with a = √5 gives bound 1/√in).
    const init = options.init ?? { kind: 'uniform', bound: 1 / Math.sqrt(inFeatures) };
    this.weight = store.create(`${prefix}.weight`, [outFeatures, inFeatures], init, options.trainable);
    if (options.bias ?? true)
      this.bias = store.create(`${prefix}.bias`, [outFeatures], { kind: 'uniform', bound: 1 / Math.sqrt(inFeatures) }, options.trainable);
  }

  /** `[..., in]` → `[..., out]`. */
  apply(x: tf.Tensor): tf.Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** Functional form of {@link Linear}: `x [..., in]`, `weight [out, in]`, `bias [out]` → `[..., out]`. */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const lead = x.shape.slice(0, -1);
    const x2 = tf.reshape(x, [-1, x.shape[x.shape.length - 1]]) as tf.Tensor2D;
    // (W·xᵀ)ᵀ rather than matMul(x, W, false, true): tfjs-wasm 4.22 runs a transposed operand on a slow path
    // (11× slower for [128, 896]·[4864, 896]ᵀ, 4× for one row), and matMulPlain keeps the backward off it too.
    let y: tf.Tensor = tf.transpose(matMulPlain(weight, tf.transpose(x2)));
    if (bias) y = tf.add(y, bias);
    return tf.reshape(y, [...lead, weight.shape[0]]);
  });
}
