/**
 * Ablation baselines that sample without the question (spec §5): adaptive average pooling of the patch grid, and
 * all patches. Both keep the vision width Cv, so `outDim` is Cv and the projector's input follows it.
 */
import { InvalidArgumentError, matMulPlain, tf, type SpatialTokens, type StageContext, type StageDependencies } from '@bvllm/core';
import type { NoneSampleConfig, PoolSampleConfig } from './config.js';
import { checkMergedFrames, visionWidthOf } from './merged-frames.js';
import type { SpatialSampleInput, SpatialSampleStage } from './types.js';

/**
 * The `[rows·cols, H·W]` matrix of PyTorch `adaptive_avg_pool2d`: output cell (i, j) averages input rows
 * ⌊i·H/rows⌋ … ⌈(i+1)·H/rows⌉ − 1 and the same for columns. Cells are row-major, as patches are.
 */
export function adaptivePoolMatrix(grid: readonly [number, number], output: readonly [number, number]): Float32Array {
  const [h, w] = grid;
  const [rows, cols] = output;
  const m = new Float32Array(rows * cols * h * w);
  const bin = (i: number, size: number, out: number) => [Math.floor((i * size) / out), Math.ceil(((i + 1) * size) / out)] as const;
  for (let i = 0; i < rows; i++) {
    const [r0, r1] = bin(i, h, rows);
    for (let j = 0; j < cols; j++) {
      const [c0, c1] = bin(j, w, cols);
      const weight = 1 / ((r1 - r0) * (c1 - c0));
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) m[(i * cols + j) * h * w + r * w + c] = weight;
    }
  }
  return m;
}

abstract class ParameterFree<C extends PoolSampleConfig | NoneSampleConfig> implements SpatialSampleStage<C> {
  abstract readonly kind: C['kind'];
  /** Cv: these baselines keep the vision width. */
  readonly outDim: number;

  constructor(
    readonly config: Readonly<C>,
    deps: StageDependencies,
  ) {
    this.outDim = visionWidthOf(deps.dims);
  }

  abstract tokensPerFrame(numFrames: number, numPatches: number): number;
  abstract apply(input: SpatialSampleInput, context: StageContext): SpatialTokens;

  variables(): ReadonlyMap<string, tf.Variable> {
    return new Map();
  }

  /** Nothing to load: only an empty map is accepted. */
  loadWeights(tensors: ReadonlyMap<string, tf.Tensor>): void {
    if (tensors.size) throw new InvalidArgumentError('loadWeights', `spatial-sample "${this.kind}" has no parameters, got ${[...tensors.keys()].join(', ')}`);
  }

  dispose(): void {}
}

/** R = rows · cols pooled cells per frame. */
export class PoolSample extends ParameterFree<PoolSampleConfig> {
  readonly kind = 'pool';

  tokensPerFrame(): number {
    return this.config.outputGrid[0] * this.config.outputGrid[1];
  }

  private patchGrid(numPatches: number): [number, number] {
    if (this.config.patchGrid) {
      const [h, w] = this.config.patchGrid;
      if (h * w !== numPatches) throw new InvalidArgumentError('patchGrid', `${h} × ${w} = ${h * w} cells, but frames have N = ${numPatches} patches`);
      return [h, w];
    }
    const side = Math.round(Math.sqrt(numPatches));
    if (side * side !== numPatches) throw new InvalidArgumentError('patchGrid', `N = ${numPatches} patches is not a square grid; set patchGrid`);
    return [side, side];
  }

  apply(input: SpatialSampleInput): SpatialTokens {
    const { numFrames, numPatches } = checkMergedFrames(input.merged, this.outDim);
    const grid = this.patchGrid(numPatches);
    const [rows, cols] = this.config.outputGrid;
    if (rows > grid[0] || cols > grid[1]) throw new InvalidArgumentError('outputGrid', `${rows} × ${cols} is finer than the ${grid[0]} × ${grid[1]} patch grid`);
    const r = rows * cols;
    const spatialTokens = tf.tidy(() => {
      const pool = tf.tensor2d(adaptivePoolMatrix(grid, [rows, cols]), [r, numPatches]);
      // [K', N, Cv] → [N, K'·Cv], so one matmul pools every frame: [R, N] · [N, K'·Cv].
      const byPatch = tf.reshape(tf.transpose(input.merged.merged, [1, 0, 2]), [numPatches, numFrames * this.outDim]);
      const pooled = tf.reshape(matMulPlain(pool, byPatch), [r, numFrames, this.outDim]);
      return tf.transpose(pooled, [1, 0, 2]) as tf.Tensor3D;
    });
    return { spatialTokens };
  }
}

/** Every patch: R = N. */
export class NoneSample extends ParameterFree<NoneSampleConfig> {
  readonly kind = 'none';

  tokensPerFrame(_numFrames: number, numPatches: number): number {
    return numPatches;
  }

  apply(input: SpatialSampleInput): SpatialTokens {
    checkMergedFrames(input.merged, this.outDim);
    return { spatialTokens: input.merged.merged.clone() };
  }
}
