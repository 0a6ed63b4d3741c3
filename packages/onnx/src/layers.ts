/**
 * Composite layers written as standard ONNX ops, in the node patterns onnxruntime's graph optimiser fuses
 * (LayerNormalization, the RMSNorm Pow→ReduceMean→Add→Sqrt→Div chain, the erf GELU chain, MatMul+Add).
 * Shapes: B batch, L new positions, S = P + L key positions, H query heads, Hkv key/value heads, d head width.
 */
import { OnnxGraphError } from './errors.js';
import { MS_DOMAIN, type GraphBuilder } from './graph-builder.js';
import { isLazyWeight, mapWeights, weightDims, weightInitializer, weightValues, type WeightInput } from './weights.js';

export type { WeightInput } from './weights.js';

/** `[rows, cols]` row-major → `[cols, rows]`, blocked so both sides stay in cache for large matrices. */
export function transposeMatrix(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const tile = 64;
  for (let r0 = 0; r0 < rows; r0 += tile)
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const rEnd = Math.min(r0 + tile, rows);
      const cEnd = Math.min(c0 + tile, cols);
      for (let r = r0; r < rEnd; r++) for (let c = c0; c < cEnd; c++) out[c * rows + r] = data[r * cols + c];
    }
  return out;
}

/** Row-major parts concatenated in order. */
function concatValues(parts: readonly Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((offset, p) => (out.set(p, offset), offset + p.length), 0);
  return out;
}

/**
 * Stores an HF linear weight `[out, in]` transposed once as `name` `[in, out]`, the layout MatMul reads directly
 * (no Transpose node per call). Several weights given together are concatenated along `out` (fused q/k/v). Lazy
 * parts give a lazy initializer: the concatenation and transpose run when the model is written.
 */
export function addLinearWeight(g: GraphBuilder, name: string, weights: readonly WeightInput[]): string {
  const dims = weights.map(weightDims);
  const inDim = dims[0][1];
  for (const d of dims) if (d.length !== 2 || d[1] !== inDim) throw new OnnxGraphError(`linear weight "${name}": expected [out, ${inDim}] parts, got [${d.join(', ')}]`);
  const outDim = dims.reduce((sum, d) => sum + d[0], 0);
  const stored = mapWeights(weights, [inDim, outDim], (parts) => transposeMatrix(concatValues(parts), outDim, inDim));
  if (!isLazyWeight(stored)) return weightInitializer(g, name, stored);
  const load = () => weightValues(stored).data;
  const hf = mapWeights(weights, [outDim, inDim], concatValues);
  LINEAR_HF_LAYOUT.set(load, () => weightValues(hf).data);
  return g.lazyInitializer(name, 'float32', [inDim, outDim], load);
}

/**
 * For lazy linear weights, by their initializer's `load`: the same weight in the HF `[out, in]` layout. That is
 * the column layout quantisation reads, so {@link quantizeMatMuls} skips transposing a weight and back (two
 * full-size copies: 2 GiB each for Qwen2-7B's lm_head).
 */
export const LINEAR_HF_LAYOUT = new WeakMap<() => unknown, () => Float32Array>();

/**
 * `x [..., in] → [..., out]`: MatMul on the pre-transposed weight, then the bias. `weight` is `[out, in]` (HF
 * layout) or several such parts fused along `out`; `bias` is `[out]` (parts concatenated likewise).
 */
export function linear(g: GraphBuilder, x: string, name: string, weight: WeightInput | readonly WeightInput[], bias?: WeightInput | readonly WeightInput[]): string {
  const w = addLinearWeight(g, `${name}.weight`, Array.isArray(weight) ? weight : [weight as WeightInput]);
  const y = g.op.matMul(x, w);
  if (!bias) return y;
  const biases = Array.isArray(bias) ? bias : [bias as WeightInput];
  const size = biases.reduce((n, b) => n + weightDims(b).reduce((a, c) => a * c, 1), 0);
  return g.op.add(y, weightInitializer(g, `${name}.bias`, mapWeights(biases, [size], concatValues)));
}

/** LayerNorm over the last axis (standard LayerNormalization, opset 17+). */
export function layerNorm(g: GraphBuilder, x: string, name: string, weight: WeightInput, bias: WeightInput, eps: number): string {
  return g.op.layerNormalization(x, weightInitializer(g, `${name}.weight`, weight), weightInitializer(g, `${name}.bias`, bias), eps);
}

/** RMSNorm `x / sqrt(mean(x²) + eps) · w` over the last axis (HF `Qwen2RMSNorm`), as ORT's fusable chain. */
export function rmsNorm(g: GraphBuilder, x: string, name: string, weight: WeightInput, eps: number): string {
  // float32 even in float16 graphs: x² overflows float16 for |x| > 256, which Qwen2's residual stream reaches.
  const normed = g.float32Region(() => {
    const meanSquare = g.op.reduceMean(g.op.pow(x, g.float(2)), [-1]);
    return g.op.div(x, g.op.sqrt(g.op.add(meanSquare, g.float(eps))));
  });
  return g.op.mul(normed, weightInitializer(g, `${name}.weight`, weight));
}

/** Exact GELU `x · ½ · (1 + erf(x / √2))`, the chain ORT fuses into Gelu. */
export function gelu(g: GraphBuilder, x: string): string {
  const erf = g.op.erf(g.op.div(x, g.float(Math.SQRT2)));
  return g.op.mul(g.op.mul(x, g.op.add(erf, g.float(1))), g.float(0.5));
}

/** `x · sigmoid(x)`. */
export function silu(g: GraphBuilder, x: string): string {
  return g.op.mul(x, g.op.sigmoid(x));
}

/**
 * Rotary tables for int64 `positionIds [B, L]` (HF `RotaryEmbedding`: θ^(−2i/d) frequencies, halves duplicated):
 * `cos`, `sin` `[B, 1, L, d]`, ready to broadcast over heads. Built once per graph and shared by every layer.
 */
export function rotaryTables(g: GraphBuilder, positionIds: string, headDim: number, theta: number): { cos: string; sin: string } {
  const half = headDim / 2;
  const invFreq = Float32Array.from({ length: half }, (_, i) => 1 / theta ** ((2 * i) / headDim));
  // float32 even in float16 graphs: float16 holds integers exactly only up to 2048, and angles reach the positions.
  return g.float32Region(() => {
    const positions = g.op.unsqueeze(g.op.cast(positionIds, 'float32'), [-1]);
    const freqs = g.op.mul(positions, g.initializer(g.fresh('rotary_inv_freq'), invFreq, [half]));
    const angles = g.op.unsqueeze(g.op.concat([freqs, freqs], -1), [1]);
    return { cos: g.op.cos(angles), sin: g.op.sin(angles) };
  });
}

/** `x · cos + rotate_half(x) · sin` for `x [B, heads, L, d]` (HF `apply_rotary_pos_emb`). */
export function applyRotary(g: GraphBuilder, x: string, cos: string, sin: string, headDim: number): string {
  const half = headDim / 2;
  const x1 = g.op.slice(x, [0], [half], [-1]);
  const x2 = g.op.slice(x, [half], [headDim], [-1]);
  const rotated = g.op.concat([g.op.neg(x2), x1], -1);
  return g.op.add(g.op.mul(x, cos), g.op.mul(rotated, sin));
}

/**
 * `com.microsoft::RotaryEmbedding` tables `[maxPositions, d/2]`: `cos`/`sin` of position · θ^(−2i/d), with the
 * angle rounded to float32 as HF's float32 `RotaryEmbedding` computes it, so the fused op applies the same rotation
 * as {@link applyRotary} over {@link rotaryTables}. 2 · maxPositions · d/2 floats (16 MB for Qwen2-7B's 32 768).
 */
export function rotaryCache(g: GraphBuilder, maxPositions: number, headDim: number, theta: number): { cos: string; sin: string } {
  const half = headDim / 2;
  const cos = new Float32Array(maxPositions * half);
  const sin = new Float32Array(maxPositions * half);
  for (let i = 0; i < half; i++) {
    const invFreq = Math.fround(1 / theta ** ((2 * i) / headDim));
    for (let p = 0; p < maxPositions; p++) {
      const angle = Math.fround(p * invFreq);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos: g.initializer(g.fresh('rotary_cos_cache'), cos, [maxPositions, half]), sin: g.initializer(g.fresh('rotary_sin_cache'), sin, [maxPositions, half]) };
}

/**
 * Rotary embedding of `x [B, L, heads·d]` at int64 `positionIds [B, L]` in one fused node (non-interleaved halves,
 * HF `rotate_half`); same shape out. Positions must be below the cache's `maxPositions`.
 */
export function rotaryEmbedding(g: GraphBuilder, x: string, positionIds: string, cache: { cos: string; sin: string }, heads: number): string {
  return g.node('RotaryEmbedding', [x, positionIds, cache.cos, cache.sin], 1, { num_heads: heads, interleaved: 0 }, MS_DOMAIN)[0];
}

/**
 * RMSNorm of the residual sum `x + residual` in one `com.microsoft::SkipSimplifiedLayerNormalization` node: returns
 * the normed sum (times `weight`) and the sum itself, the next residual. The kernel accumulates in float32 whatever
 * the tensors' type, so a float16 graph needs no float32 region here.
 */
export function skipRmsNorm(g: GraphBuilder, x: string, residual: string, name: string, weight: WeightInput, eps: number): { normed: string; sum: string } {
  const gamma = weightInitializer(g, `${name}.weight`, weight);
  const [normed, , , sum] = g.node('SkipSimplifiedLayerNormalization', [x, residual, gamma], [g.fresh(`${name}_out`), '', '', g.fresh(`${name}_sum`)], { epsilon: eps }, MS_DOMAIN);
  return { normed, sum };
}

/** Large finite negative: added once to masked scores, so a fully masked (padding) row stays finite, never NaN. */
export const MASKED_SCORE = -3.0e38;

/**
 * Additive attention bias `[B, 1, L, S]` from an int64 `attentionMask [B, S]` covering past and current positions:
 * key j is hidden from chunk query i when it is padding or lies after it (j > P + i, with P = S − L).
 */
export function causalPaddingBias(g: GraphBuilder, attentionMask: string, chunk: string): string {
  const one = g.int64([1], true);
  const zero = g.int64([0], true);
  const total = g.op.squeeze(g.op.shape(attentionMask, 1, 2), [0]);
  const length = g.op.squeeze(g.op.shape(chunk, 1, 2), [0]);
  const keyIndex = g.op.unsqueeze(g.op.range(zero, total, one), [0]);
  const queryIndex = g.op.unsqueeze(g.op.range(g.op.sub(total, length), total, one), [1]);
  const future = g.op.greater(keyIndex, queryIndex);
  const padding = g.op.unsqueeze(g.op.equal(attentionMask, g.int64([0], true)), [1, 2]);
  const hidden = g.node1('Or', [future, padding]);
  return g.op.where(hidden, g.float(MASKED_SCORE), g.float(0));
}

export interface AttentionInput {
  /** `[B, H, L, d]`, rotary applied. */
  q: string;
  /** `[B, Hkv, S, d]`, rotary applied, past included. */
  k: string;
  /** `[B, Hkv, S, d]`. */
  v: string;
  /** Additive bias broadcasting to `[B, H, L, S]`. */
  bias: string;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

/**
 * Scaled dot-product attention with grouped-query heads: returns `[B, L, H·d]`. The H query heads are folded as
 * `[B, Hkv, G·L, d]` (G = H / Hkv) so each KV head serves its G query heads in one MatMul, without repeating the
 * cache G times (HF `repeat_kv` would copy it every step).
 */
export function groupedQueryAttention(g: GraphBuilder, input: AttentionInput): string {
  const { numHeads, numKvHeads, headDim } = input;
  if (numHeads % numKvHeads !== 0) throw new OnnxGraphError(`attention: ${numHeads} query heads are not a multiple of ${numKvHeads} KV heads`);
  const q = g.op.mul(input.q, g.float(1 / Math.sqrt(headDim)));
  const grouped = g.op.reshape(q, [0, numKvHeads, -1, headDim]);
  const scores = g.op.matMul(grouped, g.op.transpose(input.k, [0, 1, 3, 2]));
  const perHead = g.op.add(g.op.reshape(scores, [0, numHeads, -1, 0]), input.bias);
  const probs = g.op.reshape(g.op.softmax(perHead, -1), [0, numKvHeads, -1, 0]);
  const context = g.op.reshape(g.op.matMul(probs, input.v), [0, numHeads, -1, headDim]);
  return g.op.reshape(g.op.transpose(context, [0, 2, 1, 3]), [0, 0, numHeads * headDim]);
}

/** `x [B, L, heads·d] → [B, heads, L, d]`. */
export function splitHeads(g: GraphBuilder, x: string, heads: number, headDim: number): string {
  return g.op.transpose(g.op.reshape(x, [0, 0, heads, headDim]), [0, 2, 1, 3]);
}
