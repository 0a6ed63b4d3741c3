/**
 * What a synthetic frame shows, from the scene it was rendered from, counted on the renderer's own rasterisation
 * ({@link forEachObjectPixel}): the labels of the default model's vision pre-training (@bvllm/bvllm-tiny). No
 * pretrained tower or Q-Former can be downloaded for it, and a tower trained only to reconstruct pixels keeps colour
 * but not shape (a 10-px shape pooled to a 4×4 patch target is a blob), so the tower and the spatial Q-Former also
 * learn to name what they see, much as InstructBLIP's Q-Former learnt from image-text pairs.
 */
import { forEachObjectPixel } from './render.js';
import { centreAt, frameTimeSec, isVisible, type Scene } from './scene.js';
import { COLOURS, SHAPES } from './vocabulary.js';

/** Objects per class pair: index `colour · SHAPES.length + shape`. */
export const PAIR_CLASSES = COLOURS.length * SHAPES.length;

/**
 * Cells per side of the frame grid the label tokens describe (the default model's label tokens): 2 × 2 cells, one per visual
 * token of a frame (R = 4).
 */
export const CELL_GRID = 2;

/** A patch counts as showing an object when the object covers at least this share of the patch's pixels. */
const MIN_COVERAGE = 0.08;

export interface FrameLabels {
  /** Per patch, row-major over the `grid × grid` patches: 0 for background, else 1 + the colour's index. `[N]` */
  patchColour: Int32Array;
  /** Per patch: 0 for background, else 1 + the shape's index. `[N]` */
  patchShape: Int32Array;
  /** 1 where an object of that colour–shape pair is visible. `[PAIR_CLASSES]` */
  present: Float32Array;
  /**
   * Per cell of the `CELL_GRID × CELL_GRID` grid (row-major), 1 for each colour–shape pair whose visible object has
   * its centre in the cell. `[CELL_GRID² · PAIR_CLASSES]`
   */
  cellPairs: Float32Array;
}

/** Labels of frame `frameIndex` of `scene` on a `grid × grid` patch grid. */
export function frameLabels(scene: Scene, frameIndex: number, grid: number): FrameLabels {
  const timeSec = frameTimeSec(scene, frameIndex);
  const patchPx = scene.size / grid;
  const patchColour = new Int32Array(grid * grid);
  const patchShape = new Int32Array(grid * grid);
  const present = new Float32Array(PAIR_CLASSES);
  const coverage = new Float32Array(grid * grid);
  for (const object of scene.objects) {
    if (!isVisible(object, timeSec)) continue;
    const colour = COLOURS.indexOf(object.colour);
    const shape = SHAPES.indexOf(object.shape);
    present[colour * SHAPES.length + shape] = 1;
    const covered = new Float32Array(grid * grid);
    forEachObjectPixel(scene, object, timeSec, (x, y) => covered[Math.floor(y / patchPx) * grid + Math.floor(x / patchPx)]++);
    for (let p = 0; p < covered.length; p++) {
      const share = covered[p] / (patchPx * patchPx);
      if (share >= MIN_COVERAGE && share > coverage[p]) {
        coverage[p] = share;
        patchColour[p] = 1 + colour;
        patchShape[p] = 1 + shape;
      }
    }
  }
  return { patchColour, patchShape, present, cellPairs: cellPairLabels(scene, frameIndex) };
}

/** `[CELL_GRID² · PAIR_CLASSES]`: per cell (row-major), 1 for each visible pair whose object is centred in it. */
export function cellPairLabels(scene: Scene, frameIndex: number): Float32Array {
  const timeSec = frameTimeSec(scene, frameIndex);
  const cells = new Float32Array(CELL_GRID * CELL_GRID * PAIR_CLASSES);
  const cellOf = (v: number) => Math.min(CELL_GRID - 1, Math.max(0, Math.floor((v / scene.size) * CELL_GRID)));
  for (const object of scene.objects) {
    if (!isVisible(object, timeSec)) continue;
    const centre = centreAt(object, timeSec);
    cells[(cellOf(centre.y) * CELL_GRID + cellOf(centre.x)) * PAIR_CLASSES + COLOURS.indexOf(object.colour) * SHAPES.length + SHAPES.indexOf(object.shape)] = 1;
  }
  return cells;
}
