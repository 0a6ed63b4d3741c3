import * as tf from '@tensorflow/tfjs-core';
import type { ParameterStore } from '../parameter-store.js';

/** `(x − mean) / √(var + eps) · w + b` over the last axis, biased variance as PyTorch. Keys: `.weight`, `.bias` [dim]. */
export class LayerNorm {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  constructor(
    store: ParameterStore,
    readonly prefix: string,
    readonly dim: number,
    readonly eps: number,
    trainable = true,
  ) {
    this.weight = store.create(`${prefix}.weight`, [dim], { kind: 'ones' }, trainable);
    this.bias = store.create(`${prefix}.bias`, [dim], { kind: 'zeros' }, trainable);
  }

  apply(x: tf.Tensor): tf.Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export function layerNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const axis = x.rank - 1;
    const mean = tf.mean(x, axis, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), axis, true);
    return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, eps))), weight), bias);
  });
}

/** `x / √(mean(x²) + eps) · w` over the last axis (Qwen2RMSNorm). Key: `.weight` [dim]. */
export class RMSNorm {
  readonly weight: tf.Variable;
  constructor(
    store: ParameterStore,
    readonly prefix: string,
    readonly dim: number,
    readonly eps: number,
    trainable = true,
  ) {
    this.weight = store.create(`${prefix}.weight`, [dim], { kind: 'ones' }, trainable);
  }

  apply(x: tf.Tensor): tf.Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}

export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), x.rank - 1, true), eps))), weight));
}
