/** Micro-batch collation: right padding, labels padded with −100, an attention mask over the real tokens. */
import { InvalidArgumentError, tf } from '@bvllm/core';
import { IGNORE_INDEX } from './preprocess.js';
import type { InstructSample } from './instruct-dataset.js';

export interface InstructBatch {
  /** [B, L] int32, right-padded with `padTokenId`; placeholders (−201 / −200) kept for the visual splice. */
  inputIds: tf.Tensor2D;
  /** [B, L] int32, padded with −100. */
  labels: tf.Tensor2D;
  /** [B, L] int32, 1 on real tokens. From the lengths, not from `ids ≠ pad` as the official collator does, so a real token equal to the pad id stays visible. */
  attentionMask: tf.Tensor2D;
  /** Unpadded length of each row. */
  lengths: number[];
  /** The samples in batch order (ids, questions for the Q-Formers, media paths). */
  samples: InstructSample[];
}

export function collateInstruct(samples: readonly InstructSample[], padTokenId: number): InstructBatch {
  if (samples.length === 0) throw new InvalidArgumentError('samples', 'a batch needs at least one sample');
  const lengths = samples.map((s) => s.inputIds.length);
  const width = Math.max(...lengths);
  const b = samples.length;
  const ids = new Int32Array(b * width).fill(padTokenId);
  const labels = new Int32Array(b * width).fill(IGNORE_INDEX);
  const mask = new Int32Array(b * width);
  samples.forEach((s, row) => {
    ids.set(s.inputIds, row * width);
    labels.set(s.labels, row * width);
    mask.fill(1, row * width, row * width + s.inputIds.length);
  });
  return {
    inputIds: tf.tensor2d(ids, [b, width], 'int32'),
    labels: tf.tensor2d(labels, [b, width], 'int32'),
    attentionMask: tf.tensor2d(mask, [b, width], 'int32'),
    lengths,
    samples: samples.slice(),
  };
}
