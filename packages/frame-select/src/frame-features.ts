import { InvalidArgumentError, assertShape, matMulPlain, tf, type FrameFeatures, type FrameSelection, type LayerNorm } from '@bvllm/core';
import { oneHotRows } from './gumbel-softmax.js';

/** Checks the encoder's output at the stage boundary; returns T and N. */
export function checkFrameFeatures(features: FrameFeatures, visionWidth: number): { numFrames: number; numPatches: number } {
  assertShape('features.patches', features.patches, ['T', 'N', visionWidth]);
  const [numFrames, numPatches] = features.patches.shape;
  assertShape('features.cls', features.cls, [numFrames, visionWidth]);
  if (numFrames === 0) throw new InvalidArgumentError('features', 'empty video: T = 0 frames');
  if (features.timestampsSec.length !== numFrames)
    throw new InvalidArgumentError('features.timestampsSec', `expected ${numFrames} timestamps (one per frame), got ${features.timestampsSec.length}`);
  return { numFrames, numPatches };
}

/**
 * `frameWeights [K, T] · LN_t(patches [T, N, Cv])` → selected `[K, N, Cv]`, plus each row's argmax frame.
 * The LayerNorm is per token, so it commutes with picking frames; it still runs on all T frames here because soft
 * weights mix every frame.
 */
export function selectFrames(frameWeights: tf.Tensor2D, features: FrameFeatures, norm: Pick<LayerNorm, 'apply'>): FrameSelection {
  const selected = tf.tidy(() => {
    const [t, n, c] = features.patches.shape;
    const normed = tf.reshape(norm.apply(features.patches), [t, n * c]) as tf.Tensor2D;
    return tf.reshape(matMulPlain(frameWeights, normed), [frameWeights.shape[0], n, c]) as tf.Tensor3D;
  });
  return { frameWeights, selected, ...argmaxFrames(frameWeights, features.timestampsSec) };
}

/** One-hot rows `[K, T]` for fixed frame picks, with `selected = LN_t(patches[indices])` (no mixing, so no matmul). */
export function pickFrames(indices: readonly number[], features: FrameFeatures, norm: LayerNorm): FrameSelection {
  const numFrames = features.patches.shape[0];
  return tf.tidy(() => {
    const idx = tf.tensor1d(Int32Array.from(indices), 'int32');
    return {
      frameWeights: oneHotRows(idx, numFrames),
      selected: norm.apply(tf.gather(features.patches, idx)) as tf.Tensor3D,
      frameIndices: Int32Array.from(indices),
      timestampsSec: indices.map((i) => features.timestampsSec[i]),
    };
  });
}

function argmaxFrames(frameWeights: tf.Tensor2D, timestampsSec: readonly number[]): Pick<FrameSelection, 'frameIndices' | 'timestampsSec'> {
  const argmax = tf.argMax(frameWeights, 1);
  const frameIndices = Int32Array.from(argmax.dataSync());
  argmax.dispose();
  return { frameIndices, timestampsSec: Array.from(frameIndices, (i) => timestampsSec[i]) };
}
