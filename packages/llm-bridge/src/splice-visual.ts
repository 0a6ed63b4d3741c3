/**
 * `prepare_inputs_labels_for_multimodal` (spec §1.2): each placeholder id (−200/−201) in a tokenized prompt is
 * replaced by its variable-length block of visual embeddings, whose labels are −100; the batch is then padded on
 * the right with zero embeddings, −100 labels and a 0 attention mask. Positions stay plain 0 … L−1.
 */
import { InvalidArgumentError, ShapeError, tf } from '@bvllm/core';
import { IGNORE_INDEX } from './constants.js';
import type { Qwen2Model } from './qwen2-model.js';

/** A sample's placeholders and visual blocks differ in number (llava's "image tokens and features" check). */
export class PlaceholderMismatchError extends InvalidArgumentError {
  constructor(
    readonly sample: number,
    readonly placeholders: number,
    readonly visualBlocks: number,
  ) {
    super(`visual[${sample}]`, `the prompt has ${placeholders} placeholder(s) but ${visualBlocks} visual block(s) were given`);
  }
}

export interface SpliceInput {
  /** Per sample, prompt ids with placeholders (ids < 0) where visual blocks go. */
  inputIds: readonly (readonly number[])[];
  /** Per sample, labels aligned with `inputIds` (placeholder labels are ignored); all −100 when absent. */
  labels?: readonly (readonly number[])[];
  /** Per sample, one `[M, D]` block per placeholder, in prompt order (a video's visual embeddings). Not consumed. */
  visual: readonly (readonly tf.Tensor[])[];
  /** Truncate every spliced sequence to this many positions (the reference's `model_max_length`). */
  maxLength?: number;
}

export interface SpliceOutput {
  /** `[B, L, D]`, right-padded with zeros. */
  inputsEmbeds: tf.Tensor3D;
  /** 1 for real positions, 0 for padding. int32 `[B, L]` */
  attentionMask: tf.Tensor2D;
  /** Labels with −100 on visual and padded positions. int32 `[B, L]` */
  labels: tf.Tensor2D;
  /** Real (unpadded) length of each sample. */
  lengths: number[];
}

/** Splices the visual blocks into the token embeddings. Differentiable with respect to the visual blocks. */
export function spliceVisual(model: Pick<Qwen2Model, 'embed' | 'config'>, input: SpliceInput): SpliceOutput {
  const d = model.config.hiddenSize;
  const batch = input.inputIds.length;
  if (input.visual.length !== batch) throw new InvalidArgumentError('visual', `expected ${batch} samples (one list of blocks each), got ${input.visual.length}`);
  if (input.labels && input.labels.length !== batch) throw new InvalidArgumentError('labels', `expected ${batch} samples, got ${input.labels.length}`);
  input.inputIds.forEach((ids, i) => {
    const placeholders = ids.filter((id) => id < 0).length;
    if (placeholders !== input.visual[i].length) throw new PlaceholderMismatchError(i, placeholders, input.visual[i].length);
    input.visual[i].forEach((block, j) => {
      if (block.rank !== 2 || block.shape[1] !== d) throw new ShapeError(`visual[${i}][${j}]`, ['M', d], block.shape);
    });
    if (input.labels && input.labels[i].length !== ids.length)
      throw new InvalidArgumentError(`labels[${i}]`, `has ${input.labels[i].length} entries for ${ids.length} ids`);
  });
  // Labels and lengths first, in plain arrays; then the embeddings in one tidy.
  const labelRows = input.inputIds.map((ids, i) => {
    const labels: number[] = [];
    let block = 0;
    ids.forEach((id, t) => {
      if (id < 0) labels.push(...Array<number>(input.visual[i][block++].shape[0]!).fill(IGNORE_INDEX));
      else labels.push(input.labels ? input.labels[i][t] : IGNORE_INDEX);
    });
    return input.maxLength === undefined ? labels : labels.slice(0, input.maxLength);
  });
  const lengths = labelRows.map((l) => l.length);
  const longest = Math.max(1, ...lengths);
  const tensors = tf.tidy(() => {
    const rows = input.inputIds.map((ids, i) => {
      const pieces: tf.Tensor[] = [];
      let block = 0;
      let run: number[] = [];
      const flushText = () => {
        if (run.length) pieces.push(tf.reshape(model.embed([run]), [run.length, d]));
        run = [];
      };
      for (const id of ids) {
        if (id < 0) {
          flushText();
          pieces.push(input.visual[i][block++]);
        } else run.push(id);
      }
      flushText();
      const row = pieces.length ? tf.concat(pieces, 0) : tf.zeros([0, d]);
      const kept = row.shape[0]! > lengths[i] ? tf.slice(row, [0, 0], [lengths[i], d]) : row;
      return tf.pad(kept, [
        [0, longest - lengths[i]],
        [0, 0],
      ]);
    });
    return {
      inputsEmbeds: tf.stack(rows) as tf.Tensor3D,
      attentionMask: tf.tensor2d(lengths.map((n) => Array.from({ length: longest }, (_, t) => (t < n ? 1 : 0))), [batch, longest], 'int32'),
      labels: tf.tensor2d(labelRows.map((l) => [...l, ...Array<number>(longest - l.length).fill(IGNORE_INDEX)]), [batch, longest], 'int32'),
    };
  });
  return { ...tensors, lengths };
}
