import * as tf from '@tensorflow/tfjs-core';

/**
 * Rotary tables in the rotate-half convention of Hugging Face Llama/Qwen2: `inv_freq[i] = θ^(−2i/d)`, angles
 * `pos · inv_freq` repeated twice along the head dim. Angles are computed in float64 before rounding, so long
 * positions do not lose precision. Returns `cos`, `sin` `[L, d]`.
 */
export function rotaryTables(positions: ArrayLike<number>, headDim: number, theta: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = headDim / 2;
  const cos = new Float32Array(positions.length * headDim);
  const sin = new Float32Array(positions.length * headDim);
  for (let p = 0; p < positions.length; p++) {
    for (let i = 0; i < half; i++) {
      // HF computes inv_freq in float32 (torch.arange(...).float() / dim); match its rounding.
      const invFreq = Math.fround(1 / Math.pow(theta, Math.fround((2 * i) / headDim)));
      const angle = Math.fround(positions[p] * invFreq);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * headDim + i] = cos[p * headDim + i + half] = c;
      sin[p * headDim + i] = sin[p * headDim + i + half] = s;
    }
  }
  return { cos: tf.tensor2d(cos, [positions.length, headDim]), sin: tf.tensor2d(sin, [positions.length, headDim]) };
}

/** `x · cos + rotate_half(x) · sin` with `rotate_half([a, b]) = [−b, a]`. x `[B, H, L, d]`; cos, sin `[L, d]`. */
export function applyRotary(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const d = x.shape[x.rank - 1]!;
    const [a, b] = tf.split(x, [d / 2, d / 2], x.rank - 1);
    const rotated = tf.concat([tf.neg(b), a], x.rank - 1);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
  });
}
