/**
 * Where the default model's vision pre-training draws its frames. A fixed pool of decoded frames (4 per training
 * video) over-fits the tiny tower and spatial Q-Former within a few thousand steps, so the recipe mixes it with
 * frames rendered on the fly from fresh scenes of the benchmark's own generator: an endless supply of labelled frames
 * from the training distribution, which no test scene is among (fresh scenes are drawn past the training split's
 * indices, and the test split draws from another fork of the seed). The decoded half keeps the video codec's
 * artefacts in view.
 */
import { InvalidArgumentError, Rng, tf } from '@bvllm/core';
import { buildItem, renderFrame, type SynthConfig, CELL_GRID, PAIR_CLASSES, frameLabels } from '@bvllm/synth';
import { preprocessClip } from '@bvllm/vision-encoder';

const CELL_LABELS = CELL_GRID * CELL_GRID * PAIR_CLASSES;

/** Labels of a batch of frames (see {@link frameLabels}). */
export interface FrameLabelTensors {
  /** `[B, N]` int32, 0 = background. */
  patchColour: tf.Tensor2D;
  /** `[B, N]` int32, 0 = background. */
  patchShape: tf.Tensor2D;
  /** `[B, PAIR_CLASSES]` 0/1. */
  present: tf.Tensor2D;
  /** `[B, CELL_GRID² · PAIR_CLASSES]` 0/1: the pairs centred in each cell (see {@link frameLabels}). */
  cellPairs: tf.Tensor2D;
}

/** Each label field of `sets` (the same field of every set) through `f`, so a new field needs no edit here. */
function mapLabels(sets: readonly FrameLabelTensors[], f: (fields: tf.Tensor2D[]) => tf.Tensor2D): FrameLabelTensors {
  const keys = Object.keys(sets[0]) as (keyof FrameLabelTensors)[];
  return Object.fromEntries(keys.map((key) => [key, f(sets.map((set) => set[key]))])) as unknown as FrameLabelTensors;
}

/** One batch: preprocessed pixels `[B, S, S, 3]` (NHWC, CLIP-normalised) and, when known, what each frame shows. */
export interface PretrainBatch {
  pixels: tf.Tensor4D;
  labels?: FrameLabelTensors;
}

/** Where the pre-training phases draw their frames from. */
export interface PretrainBatchSource {
  /** Draws a batch of `size` frames; the caller disposes it. */
  draw(size: number, rng: Rng): PretrainBatch;
  /** The source's own place in its stream (empty when all its randomness comes from `rng`), for a checkpoint. */
  position(): number[];
  /** Goes back to a {@link position} (a resumed run). */
  seek(position: readonly number[]): void;
}

/** Random rows of a fixed pool of frames `[F, S, S, 3]` (with their labels `[F, …]`, when given). */
export function poolBatches(pixels: tf.Tensor4D, labels?: FrameLabelTensors): PretrainBatchSource {
  return {
    draw(size, rng) {
      const index = tf.tensor1d(Array.from({ length: size }, () => rng.int(pixels.shape[0])), 'int32');
      const batch: PretrainBatch = {
        pixels: tf.gather(pixels, index),
        labels: labels && mapLabels([labels], ([t]) => tf.gather(t, index)),
      };
      index.dispose();
      return batch;
    },
    position: () => [],
    seek: () => {},
  };
}

/**
 * Frames of fresh scenes from the benchmark generator `settings` (its `meta.json` settings), one random frame per
 * scene, rendered at the tower's `imageSize` and labelled on its `grid × grid` patches. Scenes are the training
 * split's items `firstIndex`, `firstIndex + 1`, …: pass at least the split's size so none is a training video.
 */
export function renderedBatches(settings: SynthConfig, imageSize: number, grid: number, firstIndex: number): PretrainBatchSource {
  if (settings.size !== imageSize)
    throw new InvalidArgumentError('settings.size', `renders ${settings.size} px frames; the tower reads ${imageSize} px (no resize on this path)`);
  let next = firstIndex;
  const draw = (size: number, rng: Rng): PretrainBatch => {
    const pixels = new Float32Array(size * imageSize * imageSize * 3);
    const patchColour = new Int32Array(size * grid * grid);
    const patchShape = new Int32Array(size * grid * grid);
    const present = new Float32Array(size * PAIR_CLASSES);
    const cellPairs = new Float32Array(size * CELL_LABELS);
    for (let i = 0; i < size; i++) {
      const { scene } = buildItem(settings, 'train', next++);
      const frame = rng.int(scene.numFrames);
      pixels.set(preprocessClip(renderFrame(scene, frame), imageSize, imageSize, { shortestEdge: imageSize, cropSize: imageSize }), i * imageSize * imageSize * 3);
      const labels = frameLabels(scene, frame, grid);
      patchColour.set(labels.patchColour, i * grid * grid);
      patchShape.set(labels.patchShape, i * grid * grid);
      present.set(labels.present, i * PAIR_CLASSES);
      cellPairs.set(labels.cellPairs, i * CELL_LABELS);
    }
    return {
      pixels: tf.tensor4d(pixels, [size, imageSize, imageSize, 3]),
      labels: {
        patchColour: tf.tensor2d(patchColour, [size, grid * grid], 'int32'),
        patchShape: tf.tensor2d(patchShape, [size, grid * grid], 'int32'),
        present: tf.tensor2d(present, [size, PAIR_CLASSES]),
        cellPairs: tf.tensor2d(cellPairs, [size, CELL_LABELS]),
      },
    };
  };
  // The next scene to render is the whole state: a resumed run renders the scenes the interrupted one would have.
  return {
    draw,
    position: () => [next],
    seek: ([at]) => {
      next = at;
    },
  };
}

/** Each batch split between `sources` as evenly as the size allows (earlier sources take the remainder). */
export function mixedBatches(sources: readonly PretrainBatchSource[]): PretrainBatchSource {
  if (sources.length === 0) throw new InvalidArgumentError('sources', 'needs at least one batch source');
  return {
    draw(size, rng) {
      const parts = sources
        .map((source, i) => ({ source, share: Math.floor(size / sources.length) + (i < size % sources.length ? 1 : 0) }))
        .filter((p) => p.share > 0)
        .map((p) => p.source.draw(p.share, rng));
      const labelled = parts.every((p) => p.labels);
      const batch: PretrainBatch = {
        pixels: tf.concat(parts.map((p) => p.pixels)),
        labels: labelled ? mapLabels(parts.map((p) => p.labels!), (ts) => tf.concat(ts)) : undefined,
      };
      disposeBatch(...parts);
      return batch;
    },
    // Each source's position in turn, as [length, …values] so seek can split them back.
    position: () => sources.flatMap((source) => {
      const at = source.position();
      return [at.length, ...at];
    }),
    seek(position) {
      let i = 0;
      for (const source of sources) {
        const length = position[i];
        source.seek(position.slice(i + 1, i + 1 + length));
        i += 1 + length;
      }
    },
  };
}

export function disposeBatch(...batches: PretrainBatch[]): void {
  tf.dispose(batches.flatMap((b) => [b.pixels, ...(b.labels ? Object.values(b.labels) : [])]));
}
