import * as tf from '@tensorflow/tfjs-core';
import { matMulPlain } from './matmul.js';

/** `[B, L, H·d]` → `[B, H, L, d]`. */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, l, hd] = x.shape as [number, number, number];
    return tf.transpose(tf.reshape(x, [b, l, heads, hd / heads]), [0, 2, 1, 3]) as tf.Tensor4D;
  });
}

/** `[B, H, L, d]` → `[B, L, H·d]`. */
export function mergeHeads(x: tf.Tensor): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, h, l, d] = x.shape as [number, number, number, number];
    return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, l, h * d]) as tf.Tensor3D;
  });
}

/**
 * A padding mask `[B, Lk]` (1 = attend, 0 = pad) as an additive bias `[B, 1, 1, Lk]`: 0 where kept, −1e9 where
 * padded. A large finite value rather than −∞ keeps fully padded rows finite (softmax gives a uniform row, as the
 * reference's `finfo.min` does) instead of NaN.
 */
export function paddingBias(mask: tf.Tensor): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, l] = mask.shape as [number, number];
    return tf.reshape(tf.mul(tf.sub(1, tf.cast(mask, 'float32')), -1e9), [b, 1, 1, l]) as tf.Tensor4D;
  });
}

/**
 * A causal bias `[1, 1, Lq, Lk]` for queries that are the last `Lq` of `Lk` positions (a KV cache holds the first
 * `Lk − Lq`): query i may see keys 0 … Lk − Lq + i.
 */
export function causalBias(queryLength: number, keyLength: number): tf.Tensor4D {
  const values = new Float32Array(queryLength * keyLength);
  const offset = keyLength - queryLength;
  for (let i = 0; i < queryLength; i++) for (let j = i + offset + 1; j < keyLength; j++) values[i * keyLength + j] = -1e9;
  return tf.tensor4d(values, [1, 1, queryLength, keyLength]);
}

/** `[B, Hkv, L, d]` → `[B, Hkv·groups, L, d]`, each KV head serving `groups` consecutive query heads (GQA). */
export function repeatKvHeads(x: tf.Tensor, groups: number): tf.Tensor {
  if (groups === 1) return x.clone();
  return tf.tidy(() => {
    const [b, h, l, d] = x.shape as [number, number, number, number];
    return tf.reshape(tf.tile(tf.reshape(x, [b, h, 1, l, d]), [1, 1, groups, 1, 1]), [b, h * groups, l, d]);
  });
}

/**
 * Scaled dot-product attention, `softmax(q·kᵀ·scale + bias) · v`.
 * q `[B, H, Lq, d]`; k, v `[B, Hkv, Lk, d]` with H a multiple of Hkv (grouped-query attention); `bias` broadcasts
 * to `[B, H, Lq, Lk]` (sum of {@link paddingBias} and {@link causalBias} as needed). Returns `[B, H, Lq, d]`, and the
 * attention probabilities `[B, H, Lq, Lk]` when `returnProbs` is set (for visualisation).
 */
export function attention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  options: { bias?: tf.Tensor; scale?: number } = {},
): tf.Tensor4D {
  return tf.tidy(() => {
    const heads = q.shape[1]!;
    const kvHeads = k.shape[1]!;
    const groups = heads / kvHeads;
    if (!Number.isInteger(groups)) throw new Error(`attention: ${heads} query heads are not a multiple of ${kvHeads} KV heads`);
    const kk = repeatKvHeads(k, groups);
    const vv = repeatKvHeads(v, groups);
    const scale = options.scale ?? 1 / Math.sqrt(q.shape[3]!);
    let scores = tf.mul(matMulPlain(q, kk, false, true), scale);
    if (options.bias) scores = tf.add(scores, options.bias);
    return matMulPlain(tf.softmax(scores), vv) as tf.Tensor4D;
  });
}
