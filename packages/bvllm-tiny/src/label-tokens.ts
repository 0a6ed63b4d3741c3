/**
 * Label tokens: what a frame shows, written as visual tokens the LLM can already read. A frame's R = 4 visual tokens
 * stand for the cells of a 2 × 2 grid over it; the label token of a cell is the sum, over the objects centred in
 * it, of the LLM's own embeddings of their colour word and shape word ("red" + "square"), and a fixed "empty" vector
 * when none is. The default model's LLM is warmed up reading them in place of `<video>` (frames picked from the
 * video, every object on screen at least once), so it learns to answer from per-frame, per-cell facts: which pair is
 * where, in which frame, in time order. The visual path is then trained to produce exactly these tokens from pixels
 * (token-alignment.ts), so stages 1 and 2 start from visual tokens the LLM reads instead of tokens it must learn to
 * read from 6,000 one-token answers (measured: it did not; visual reliance on test questions 4%).
 */
import { Rng, assertShape, tf } from '@bvllm/core';
import { causalLmLoss, spliceVisual } from '@bvllm/llm-bridge';
import { COLOURS, SHAPES, isVisible, type Scene, CELL_GRID, PAIR_CLASSES, cellPairLabels } from '@bvllm/synth';
import { DatasetError, VIDEO_TOKEN_INDEX, type InstructSample } from '@bvllm/trainer';
import { sampleFrameIndices, samplingOptionsSchema } from '@bvllm/vision-encoder';
import type { BvllmModel } from '@bvllm/pipeline';

/** Label tokens per frame: one per cell. */
export const CELLS = CELL_GRID * CELL_GRID;

/** Seed of the fixed direction of the "empty cell" token. */
const EMPTY_SEED = 0x5eed;

/**
 * `[PAIR_CLASSES, D]`: each colour–shape pair as the LLM's embedding of its colour word plus that of its shape word
 * (each word the mean of its BPE tokens' embeddings, with the leading space it has in a caption). Differentiable
 * with respect to the embedding table.
 */
export function pairEmbeddings(model: BvllmModel): tf.Tensor2D {
  const words = [...COLOURS, ...SHAPES].map((w) => model.assets.tokenizer.encode(` ${w}`));
  const ids = words.flat();
  const mean = new Float32Array(words.length * ids.length);
  let at = 0;
  words.forEach((w, i) => w.forEach(() => (mean[i * ids.length + at++] = 1 / w.length)));
  const pick = new Float32Array(PAIR_CLASSES * words.length);
  for (let c = 0; c < COLOURS.length; c++)
    for (let s = 0; s < SHAPES.length; s++) {
      const pair = c * SHAPES.length + s;
      pick[pair * words.length + c] = 1;
      pick[pair * words.length + COLOURS.length + s] = 1;
    }
  return tf.tidy(() => {
    const table = tf.reshape(model.llm.embed([ids]), [ids.length, -1]);
    const wordVectors = tf.matMul(tf.tensor2d(mean, [words.length, ids.length]), table);
    return tf.matMul(tf.tensor2d(pick, [PAIR_CLASSES, words.length]), wordVectors) as tf.Tensor2D;
  });
}

/**
 * Cell labels `[M, PAIR_CLASSES]` (0/1) → label tokens `[M, D]`: the sum of the pairs' embeddings, or, for a cell
 * with no object, a fixed seeded standard-normal draw times the pair embeddings' RMS (so about their scale). Not zero:
 * Qwen2's RMSNorm would blow a near-zero visual token up to noise. Differentiable with respect to the embedding table.
 */
export function labelTokens(model: BvllmModel, cells: tf.Tensor2D, pairs?: tf.Tensor2D): tf.Tensor2D {
  assertShape('cells', cells, ['M', PAIR_CLASSES]);
  const d = model.llm.config.hiddenSize;
  const direction = Rng.fromSeed(EMPTY_SEED).normalArray(d);
  return tf.tidy(() => {
    // Built inside the tidy when not given, so a one-off call leaves no table behind.
    const table = pairs ?? pairEmbeddings(model);
    const rms = tf.sqrt(tf.mean(tf.square(table)));
    const empty = tf.mul(tf.tensor2d(direction, [1, d]), rms);
    const isEmpty = tf.sub(1, tf.minimum(1, tf.sum(cells, 1, true)));
    return tf.add(tf.matMul(cells, table), tf.mul(isEmpty, empty)) as tf.Tensor2D;
  });
}

/** A video's training frames (uniform `numFrames`, as stages 1 and 2 sample them) as cell labels and objects on screen. */
export interface VideoCellLabels {
  /** Per frame, `[CELLS · PAIR_CLASSES]`. */
  cells: Float32Array[];
  /** Per frame, the indices of the scene's objects visible in it. */
  visible: number[][];
}

/** Cell labels of the frames stages 1 and 2 read from the video of `scene` (uniform `numFrames`, spec §2). */
export function videoCellLabels(scene: Scene, numFrames: number): VideoCellLabels {
  const frames = sampleFrameIndices(scene.numFrames, scene.fps, samplingOptionsSchema.parse({ mode: 'uniform', numFrames }));
  const visible = frames.map((f) => scene.objects.flatMap((o, i) => (isVisible(o, f / scene.fps) ? [i] : [])));
  return { cells: frames.map((f) => cellPairLabels(scene, f)), visible };
}

/**
 * Up to `maxFrames` frames in time order, as a selection that looks in the right places would keep them: a random
 * number (1 … maxFrames) of random frames, then, for each object on screen in some frame but in none picked, one
 * picked frame swapped for a frame showing it (so a brief flash is in view, as selection is meant to put it).
 */
export function pickFrames(labels: VideoCellLabels, maxFrames: number, rng: Rng): number[] {
  const count = 1 + rng.int(Math.min(maxFrames, labels.cells.length));
  const picked = rng.shuffle([...labels.cells.keys()]).slice(0, count);
  const objects = [...new Set(labels.visible.flat())];
  for (const object of objects) {
    if (picked.some((f) => labels.visible[f].includes(object))) continue;
    const showing = [...labels.cells.keys()].filter((f) => labels.visible[f].includes(object));
    picked[rng.int(picked.length)] = showing[rng.int(showing.length)];
  }
  return [...new Set(picked)].sort((a, b) => a - b);
}

/** One warm-up sample: the text ids around `<video>` and the cell labels of its picked frames. */
export interface LabelTokenSample {
  inputIds: number[];
  labels: number[];
  /** `[M, PAIR_CLASSES]` flattened, M = picked frames · CELLS. */
  cells: Float32Array;
}

/** Samples of a stage dataset → label-token samples, frames picked afresh each time (`rng`). */
export function collateLabelTokens(samples: readonly InstructSample[], videos: ReadonlyMap<string, VideoCellLabels>, maxFrames: number, rng: Rng): LabelTokenSample[] {
  return samples.map((sample) => {
    const labels = sample.mediaPath ? videos.get(sample.mediaPath) : undefined;
    if (!labels) throw new DatasetError(sample.id, `no scene for ${sample.mediaPath ?? 'a sample without video'}`);
    if (!sample.inputIds.includes(VIDEO_TOKEN_INDEX)) throw new DatasetError(sample.id, 'no <video> placeholder for the label tokens');
    const frames = pickFrames(labels, maxFrames, rng);
    const cells = new Float32Array(frames.length * CELLS * PAIR_CLASSES);
    frames.forEach((f, i) => cells.set(labels.cells[f], i * CELLS * PAIR_CLASSES));
    return { inputIds: sample.inputIds, labels: sample.labels, cells };
  });
}

/** Next-token loss of the LLM reading label tokens where `<video>` stands (answer tokens only, as in stage 2). */
export function labelTokenLoss(model: BvllmModel, batch: readonly LabelTokenSample[]): tf.Scalar {
  return tf.tidy(() => {
    const pairs = pairEmbeddings(model);
    const visual = batch.map((s) => [labelTokens(model, tf.tensor2d(s.cells, [s.cells.length / PAIR_CLASSES, PAIR_CLASSES]), pairs)]);
    const spliced = spliceVisual(model.llm, { inputIds: batch.map((s) => s.inputIds), labels: batch.map((s) => s.labels), visual });
    const { logits } = model.llm.forward({ inputsEmbeds: spliced.inputsEmbeds, attentionMask: spliced.attentionMask, logitsFor: 'all' });
    return causalLmLoss(logits, spliced.labels);
  });
}
