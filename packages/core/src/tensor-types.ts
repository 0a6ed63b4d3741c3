/**
 * The tensors that flow between B-VLLM stages (spec §1.1). Symbols: T frames (1 fps), N patches per frame,
 * Cv vision width, K temporal queries, K' frames kept after merging, R spatial tokens per frame, Cq Q-Former width,
 * D LLM width, M visual tokens, Lt question tokens. All float32 unless stated. Changing one is a breaking change.
 */
import type * as tf from '@tensorflow/tfjs-core';

/** The vision encoder's output for one video (or one image, T = 1). */
export interface FrameFeatures {
  /** Each frame's raw [CLS] token, not layer-normed (spec §1.1 "split"). [T, Cv] */
  cls: tf.Tensor2D;
  /** Each frame's patch tokens, row-major over the patch grid. [T, N, Cv] */
  patches: tf.Tensor3D;
  /** Time of each frame in seconds, ascending. Length T. */
  timestampsSec: readonly number[];
}

/** The question that conditions both Q-Formers, as BERT ids (spec §1.1 "text"). */
export interface QuestionTokens {
  /** WordPiece ids, right-padded. int32 [1, Lt] */
  inputIds: tf.Tensor2D;
  /** 1 for real tokens, 0 for padding. int32 [1, Lt] */
  attentionMask: tf.Tensor2D;
}

/** Frame selection's output (spec §1.1 (a)). */
export interface FrameSelection {
  /** Each query's Gumbel-softmax weights over frames; every row sums to 1. [K, T] */
  frameWeights: tf.Tensor2D;
  /** frameWeights · LN(patches): one mixed frame per query. [K, N, Cv] */
  selected: tf.Tensor3D;
  /** Argmax over T of each row of frameWeights, for ordering and logs. Length K. */
  frameIndices: Int32Array;
  /** timestampsSec of frameIndices. Length K. */
  timestampsSec: readonly number[];
}

/** Temporal merging's output (spec §1.1 (b)). */
export interface MergedFrames {
  /** The kept rows, each the mean of itself and the rows merged into it. [K', N, Cv] */
  merged: tf.Tensor3D;
  /** For each kept row, the query indices averaged into it (itself first). Length K'. */
  groups: readonly (readonly number[])[];
  /** Argmax frame of each kept row. Length K'. */
  frameIndices: Int32Array;
  /** timestampsSec of frameIndices. Length K'. */
  timestampsSec: readonly number[];
}

/** Spatial sampling's output (spec §1.1 (c), (d)). */
export interface SpatialTokens {
  /** R tokens per kept frame (after an optional budget merge, R may be smaller). [K', R, Cq] */
  spatialTokens: tf.Tensor3D;
}

/** The projector's output, ready to splice into the LLM's input embeddings (spec §1.1 (e)), frame-major. [M, D] */
export type VisualEmbeds = tf.Tensor2D;
