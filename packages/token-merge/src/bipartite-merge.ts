/**
 * ToMe bipartite soft matching as the budget merge of spec §1.1 (d) uses it (`merge.py:18-36, 114-198`).
 *
 * The decisions (which token goes where) are discrete and taken on the tokens' values without gradient, as the
 * reference does under `torch.no_grad`. Every output token is then a fixed average of input tokens, so the whole
 * merge, across all of its steps, is one matrix per frame: `out = M · tokens`. We compose that matrix in JS and
 * apply it with a single batched matMul, which keeps the result differentiable w.r.t. `tokens`.
 */
import { InvalidArgumentError, ShapeError, matMulPlain, tf } from '@bvllm/core';

/** One step's decisions for one frame. Indices count within A (token 2a) and within B (token 2b + 1). */
export interface BipartitePlan {
  /** A tokens left alone, in descending order of their best score (this is their output order). */
  unmergedEven: number[];
  /** A tokens merged away, in descending score order. */
  mergedEven: number[];
  /** The B token each of `mergedEven` is averaged into. */
  mergedIntoOdd: number[];
}

/** Tokens of one frame or a batch of frames: [L, C] or [B, L, C] (B is K' when batched over frames). */
export type TokenTensor = tf.Tensor2D | tf.Tensor3D;

function checkTokens(tokens: TokenTensor): { batch: number; length: number; channels: number } {
  if (tokens.rank === 2) return { batch: 1, length: tokens.shape[0]!, channels: tokens.shape[1]! };
  if (tokens.rank === 3) return { batch: tokens.shape[0]!, length: tokens.shape[1]!, channels: tokens.shape[2]! };
  throw new ShapeError('tokens', ['B?', 'L', 'C'], tokens.shape, 'rank must be 2 ([L, C]) or 3 ([B, L, C])');
}

/** The most tokens one step can remove: every A token, provided there is a B token to merge into. */
function maxRemovable(length: number): number {
  return length < 2 ? 0 : Math.ceil(length / 2);
}

function checkCount(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new InvalidArgumentError(name, `expected an integer in [${min}, ${max}], got ${value}`);
}

/**
 * Decides one ToMe step for one frame: A = even tokens, B = odd tokens, cosine scores, each A keeps its best B
 * (first index on ties, as torch's max), and the `r` best-scoring A tokens merge. Ties in the ranking keep index
 * order. A zero token has cosine 0 with everything (norms are clamped at 1e-12, as `F.normalize` does) where the
 * reference would produce NaN.
 */
export function planBipartiteMerge(x: ArrayLike<number>, length: number, channels: number, r: number): BipartitePlan {
  const numEven = Math.ceil(length / 2);
  const numOdd = Math.floor(length / 2);
  checkCount('r', r, 0, maxRemovable(length));
  const norms = new Float64Array(length);
  for (let t = 0; t < length; t++) {
    let s = 0;
    for (let c = 0; c < channels; c++) s += x[t * channels + c]! ** 2;
    norms[t] = Math.max(Math.sqrt(s), 1e-12);
  }
  const best = new Float64Array(numEven).fill(-Infinity);
  const bestOdd = new Int32Array(numEven);
  for (let a = 0; a < numEven; a++) {
    const ta = 2 * a;
    for (let b = 0; b < numOdd; b++) {
      const tb = 2 * b + 1;
      let dot = 0;
      for (let c = 0; c < channels; c++) dot += x[ta * channels + c]! * x[tb * channels + c]!;
      const score = dot / (norms[ta]! * norms[tb]!);
      if (score > best[a]!) {
        best[a] = score;
        bestOdd[a] = b;
      }
    }
  }
  const ranked = Array.from({ length: numEven }, (_, a) => a).sort((p, q) => best[q]! - best[p]! || p - q);
  const mergedEven = ranked.slice(0, r);
  return { unmergedEven: ranked.slice(r), mergedEven, mergedIntoOdd: mergedEven.map((a) => bestOdd[a]!) };
}

/**
 * Applies a plan to the rows of `x` ([length, width], row-major): [unmerged A in plan order ; every B in index
 * order], each B the plain mean of itself and the A rows merged into it (the reference resets sizes to 1 every
 * step, so this is not size-weighted). Used both on token values and on the running merge matrix.
 */
function applyBipartitePlan(x: ArrayLike<number>, length: number, width: number, plan: BipartitePlan): Float64Array {
  const numOdd = Math.floor(length / 2);
  const out = new Float64Array((plan.unmergedEven.length + numOdd) * width);
  plan.unmergedEven.forEach((a, row) => {
    for (let c = 0; c < width; c++) out[row * width + c] = x[2 * a * width + c]!;
  });
  const base = plan.unmergedEven.length;
  const count = new Float64Array(numOdd).fill(1);
  for (let b = 0; b < numOdd; b++) for (let c = 0; c < width; c++) out[(base + b) * width + c] = x[(2 * b + 1) * width + c]!;
  plan.mergedEven.forEach((a, i) => {
    const b = plan.mergedIntoOdd[i]!;
    count[b]! += 1;
    for (let c = 0; c < width; c++) out[(base + b) * width + c]! += x[2 * a * width + c]!;
  });
  for (let b = 0; b < numOdd; b++) if (count[b]! > 1) for (let c = 0; c < width; c++) out[(base + b) * width + c]! /= count[b]!;
  return out;
}

/**
 * The sequence of `r` values `multi_layer_merge` uses to take `length` tokens to `target`: while length // 2 > target,
 * merge length // 2; then merge the rest (length − target) if any. Empty when length ≤ target.
 */
export function multiLayerMergeSchedule(length: number, target: number): number[] {
  checkCount('length', length, 0, Number.MAX_SAFE_INTEGER);
  checkCount('target', target, 1, Number.MAX_SAFE_INTEGER);
  const steps: number[] = [];
  let t = length;
  while (Math.floor(t / 2) > target) {
    steps.push(Math.floor(t / 2));
    t -= Math.floor(t / 2);
  }
  if (t > target) steps.push(t - target);
  return steps;
}

/** Runs `steps` on every frame and returns each frame's composite merge matrix, stacked: [B, Lout, L]. */
function mergeMatrices(tokens: TokenTensor, steps: readonly number[]): { matrices: Float32Array; outLength: number } {
  const { batch, length, channels } = checkTokens(tokens);
  const outLength = steps.reduce((t, r) => t - r, length);
  const data = tokens.dataSync();
  const matrices = new Float32Array(batch * outLength * length);
  for (let f = 0; f < batch; f++) {
    let values: ArrayLike<number> = data.subarray(f * length * channels, (f + 1) * length * channels);
    let matrix: ArrayLike<number> = identity(length);
    let t = length;
    for (const r of steps) {
      const plan = planBipartiteMerge(values, t, channels, r);
      values = applyBipartitePlan(values, t, channels, plan);
      matrix = applyBipartitePlan(matrix, t, length, plan);
      t -= r;
    }
    matrices.set(matrix, f * outLength * length);
  }
  return { matrices, outLength };
}

function identity(n: number): Float64Array {
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) m[i * n + i] = 1;
  return m;
}

function mergeBySteps<T extends TokenTensor>(tokens: T, steps: readonly number[]): T {
  if (steps.length === 0) return tf.clone(tokens);
  const { batch, length } = checkTokens(tokens);
  const { matrices, outLength } = mergeMatrices(tokens, steps);
  return tf.tidy(() => {
    if (tokens.rank === 2) return matMulPlain(tf.tensor2d(matrices, [outLength, length]), tokens);
    return matMulPlain(tf.tensor3d(matrices, [batch, outLength, length]), tokens);
  }) as T;
}

/**
 * One ToMe step (spec §1.1 (d)): removes `r` tokens per frame, 0 ≤ r ≤ ceil(L / 2) (only 0 when L = 1).
 * Tokens [L, C] → [L − r, C], or [B, L, C] → [B, L − r, C] with each frame matched on its own. Output order: unmerged
 * A tokens by descending score, then all B tokens in index order. Differentiable w.r.t. `tokens`; returns a new
 * tensor the caller owns.
 */
export function bipartiteMerge<T extends TokenTensor>(tokens: T, r: number): T {
  const { length } = checkTokens(tokens);
  checkCount('r', r, 0, maxRemovable(length));
  return mergeBySteps(tokens, r === 0 ? [] : [r]);
}

/**
 * `multi_layer_merge` (spec §1.1 (d)): repeated ToMe steps until each frame has `target` tokens (see
 * {@link multiLayerMergeSchedule}); frames already at or below `target` are returned unchanged. [L, C] → [min(L,
 * target), C] or [B, L, C] → [B, min(L, target), C]. Differentiable w.r.t. `tokens`; returns a new tensor.
 */
export function multiLayerMerge<T extends TokenTensor>(tokens: T, target: number): T {
  const { length } = checkTokens(tokens);
  return mergeBySteps(tokens, multiLayerMergeSchedule(length, target));
}
