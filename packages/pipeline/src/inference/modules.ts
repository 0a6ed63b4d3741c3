/**
 * The engines an {@link InferenceSession} runs, behind one small interface per module so an ONNX stage is just
 * another implementation of the same contract (issue #18 item 3). Large tensors cross these interfaces as plain
 * row-major arrays (a long video's patches never become one tfjs tensor); the small ones (a question, the K selected
 * frames) stay tfjs tensors, because the runtime-neutral stages (temporal merge, fixed selectors, pool samplers)
 * are tfjs code over them.
 */
import { layerNorm, matMulPlain, tf, type MergedFrames, type QuestionTokens, type StageContext } from '@bvllm/core';
import type { PreprocessOptions } from '@bvllm/vision-encoder';

/** The vision tower (spec §1.0). */
export interface VisionModule {
  /** S, the square input size. */
  readonly imageSize: number;
  /** Cv. */
  readonly hiddenSize: number;
  /** What identifies this tower's numbers (for feature-cache keys). */
  readonly identity: string;
  preprocessOptions(): PreprocessOptions;
  /** NHWC pixels `[B, S, S, 3]` → `cls [B, Cv]`, `patches [B, N, Cv]` (the raw last block, spec §1.1 "split"). */
  encode(pixels: Float32Array, batch: number): Promise<{ cls: Float32Array; patches: Float32Array; numPatches: number }>;
  release(): Promise<void>;
}

/** The text-conditioned scoring of frame selection (spec §1.1 (a)) and the selection matmul. */
export interface SelectModule {
  /**
   * `feature [T, Cv]` (raw [CLS], or the mean/max over patches, D10), Gumbel noise `[K, T]` (zeros when the mode
   * draws none) → scores S and soft weights W = softmax((S + G)/τ), both `[K, T]`.
   */
  score(question: QuestionTokens, feature: Float32Array, numFrames: number, noise: Float32Array): Promise<{ scores: Float32Array; frameWeights: Float32Array }>;
  release(): Promise<void>;
}

/** X = W · LN_t(P) over some frames: `frameWeights [K, Ts]`, `patches [Ts, N, Cv]` → `[K, N, Cv]` (spec §1.1 (a)). */
export interface FrameMix {
  mix(frameWeights: Float32Array, numQueries: number, patches: Float32Array, numFrames: number): Promise<Float32Array>;
  release(): Promise<void>;
}

/** Spatial sampling and the projector (spec §1.1 (c)–(e)): merged frames → Z `[K', R', Cq]`, V `[K'·R', D]`. */
export interface SampleModule {
  /** `tokenBudget`: θ for this call in place of the config's (see `SpatialSampleInput.tokenBudget`). */
  sample(question: QuestionTokens, merged: MergedFrames, context: StageContext, tokenBudget?: number | null): Promise<{ spatialTokens: tf.Tensor3D; visualEmbeds: tf.Tensor2D }>;
  release(): Promise<void>;
}

/**
 * {@link FrameMix} on tfjs from the temporal LayerNorm's two vectors `[Cv]`: the per-token LN of the frames read,
 * then one matmul. Small (Ts frames), and the fallback until a frame-mix graph is exported.
 */
export class TfjsFrameMix implements FrameMix {
  constructor(
    private readonly weight: tf.Tensor1D,
    private readonly bias: tf.Tensor1D,
    private readonly eps: number,
  ) {}

  async mix(frameWeights: Float32Array, numQueries: number, patches: Float32Array, numFrames: number): Promise<Float32Array> {
    const c = this.weight.shape[0];
    const n = patches.length / (numFrames * c);
    const out = tf.tidy(() => {
      const p = tf.tensor3d(patches, [numFrames, n, c]);
      const normed = tf.reshape(layerNorm(p, this.weight, this.bias, this.eps), [numFrames, n * c]);
      return matMulPlain(tf.tensor2d(frameWeights, [numQueries, numFrames]), normed as tf.Tensor2D);
    });
    try {
      return (await out.data()) as Float32Array;
    } finally {
      out.dispose();
    }
  }

  async release(): Promise<void> {
    tf.dispose([this.weight, this.bias]);
  }
}
