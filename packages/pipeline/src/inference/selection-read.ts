/**
 * The selection matmul X = W · LN_t(P) (spec §1.1 (a)) over a patch store, reading back only the frames it needs.
 * W `[K, T]` is a softmax over T frames, so on a long video most columns are negligible: a frame is read only when
 * its weight exceeds ε in some row, and frames are read and mixed `chunkFrames` at a time (X is a sum over frames),
 * so memory holds one chunk of patches however many frames matter.
 *
 * Error bound: LN_t's normalised vector x̂ has zero mean and unit variance over Cv entries, so |x̂_c| ≤ √(Cv − 1),
 * and |LN_t(p)_c| ≤ max|γ|·√(Cv − 1) + max|β|. Leaving out frames of total weight m_k in row k therefore changes
 * X_k by at most m_k · (max|γ|·√(Cv − 1) + max|β|), with m_k ≤ (frames left out) · ε; {@link SelectionRead.droppedMass}
 * reports the largest m_k. ε = 0 is exact (it skips only frames of weight exactly 0, e.g. in hard selection).
 */
import type { FrameMix } from './modules.js';
import type { PatchStore } from './patch-store.js';

/** Default ε: a frame weighted below 1e-4 in every row is not read. */
export const DEFAULT_SELECTION_EPSILON = 1e-4;
/** Frames read and mixed per step. */
export const SELECTION_CHUNK_FRAMES = 16;

export interface SelectionRead {
  /** X `[K, N, Cv]`. */
  selected: Float32Array;
  /** The frames whose patches were read, ascending. */
  framesRead: number[];
  /** max over rows k of Σ W_kt over the frames not read. */
  droppedMass: number;
}

/** Frames with weight above `epsilon` in some row of `frameWeights [K, T]`, ascending. */
export function framesToRead(frameWeights: Float32Array, numQueries: number, numFrames: number, epsilon: number): number[] {
  const frames: number[] = [];
  for (let t = 0; t < numFrames; t++) {
    for (let k = 0; k < numQueries; k++) {
      if (frameWeights[k * numFrames + t] > epsilon) {
        frames.push(t);
        break;
      }
    }
  }
  return frames;
}

/** X = W · LN_t(P) from `store`, reading only the frames {@link framesToRead} picks, a chunk at a time. */
export async function readSelection(
  frameWeights: Float32Array,
  numQueries: number,
  store: PatchStore,
  mix: FrameMix,
  options: { epsilon?: number; chunkFrames?: number } = {},
): Promise<SelectionRead> {
  const t = store.numFrames;
  const k = numQueries;
  const frames = framesToRead(frameWeights, k, t, options.epsilon ?? DEFAULT_SELECTION_EPSILON);
  const chunk = options.chunkFrames ?? SELECTION_CHUNK_FRAMES;
  const selected = new Float32Array(k * store.numPatches * store.width);
  for (let start = 0; start < frames.length; start += chunk) {
    const part = frames.slice(start, start + chunk);
    const weights = new Float32Array(k * part.length);
    for (let q = 0; q < k; q++) part.forEach((frame, j) => (weights[q * part.length + j] = frameWeights[q * t + frame]));
    const mixed = await mix.mix(weights, k, store.read(part), part.length);
    for (let i = 0; i < selected.length; i++) selected[i] += mixed[i];
  }
  const read = new Set(frames);
  let droppedMass = 0;
  for (let q = 0; q < k; q++) {
    let mass = 0;
    for (let f = 0; f < t; f++) if (!read.has(f)) mass += frameWeights[q * t + f];
    droppedMass = Math.max(droppedMass, mass);
  }
  return { selected, framesRead: frames, droppedMass };
}
