import * as tf from '@tensorflow/tfjs-core';

/** Exact GELU, `x · Φ(x) = x/2 · (1 + erf(x/√2))` (PyTorch `gelu`, HF `hidden_act: "gelu"`). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));
}

/** Tanh-approximated GELU (HF `gelu_pytorch_tanh`, `gelu_new`; SigLIP). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
  });
}

/** `x · σ(x)` (SiLU / swish). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}

/** CLIP's `quick_gelu`, `x · σ(1.702 x)`. */
export function quickGelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702))));
}

export type ActivationName = 'gelu' | 'gelu_pytorch_tanh' | 'gelu_new' | 'silu' | 'quick_gelu';

/** Maps a Hugging Face `hidden_act` string to the function. */
export function activation(name: string): (x: tf.Tensor) => tf.Tensor {
  switch (name) {
    case 'gelu':
      return gelu;
    case 'gelu_pytorch_tanh':
    case 'gelu_new':
      return geluTanh;
    case 'silu':
    case 'swish':
      return silu;
    case 'quick_gelu':
      return quickGelu;
    default:
      throw new Error(`unsupported hidden_act "${name}" (supported: gelu, gelu_pytorch_tanh, gelu_new, silu, quick_gelu)`);
  }
}
