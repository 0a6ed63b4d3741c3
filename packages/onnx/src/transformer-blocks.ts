/**
 * Encoder-side building blocks shared by the vision tower and the Q-Former exports: Hugging Face activations by
 * their `hidden_act` name, and plain multi-head attention (all heads attend, an optional additive key bias).
 * Shapes: B batch, L query positions, S key positions, H heads, d head width, C = H·d.
 */
import { OnnxGraphError } from './errors.js';
import type { GraphBuilder } from './graph-builder.js';
import { gelu, silu, splitHeads } from './layers.js';

/** `x` through the HF activation `name` (`gelu` is the exact erf form; `gelu_pytorch_tanh`/`gelu_new` the tanh one). */
export function hfActivation(g: GraphBuilder, x: string, name: string): string {
  switch (name) {
    case 'gelu':
      return gelu(g, x);
    case 'gelu_pytorch_tanh':
    case 'gelu_new': {
      // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
      const cube = g.op.mul(g.op.mul(x, x), x);
      const inner = g.op.mul(g.op.add(x, g.op.mul(cube, g.float(0.044715))), g.float(Math.sqrt(2 / Math.PI)));
      return g.op.mul(g.op.mul(x, g.op.add(g.op.tanh(inner), g.float(1))), g.float(0.5));
    }
    case 'quick_gelu':
      return g.op.mul(x, g.op.sigmoid(g.op.mul(x, g.float(1.702))));
    case 'silu':
      return silu(g, x);
    default:
      throw new OnnxGraphError(`activation "${name}" has no ONNX export (known: gelu, gelu_pytorch_tanh, gelu_new, quick_gelu, silu)`);
  }
}

/**
 * Scaled dot-product attention over already projected `q [B, L, C]`, `k`, `v` `[B, S, C]` → `[B, L, C]`, heads
 * concatenated in head order. `bias` (optional) broadcasts to `[B, H, L, S]`, e.g. `[B, 1, 1, S]` for padding.
 */
export function multiHeadAttention(g: GraphBuilder, q: string, k: string, v: string, heads: number, headDim: number, bias?: string): string {
  const qh = splitHeads(g, g.op.mul(q, g.float(1 / Math.sqrt(headDim))), heads, headDim);
  // K is laid out [B, H, d, S] directly, so no second transpose of the scores is needed.
  const kh = g.op.transpose(g.op.reshape(k, [0, 0, heads, headDim]), [0, 2, 3, 1]);
  const vh = splitHeads(g, v, heads, headDim);
  let scores = g.op.matMul(qh, kh);
  if (bias) scores = g.op.add(scores, bias);
  const context = g.op.matMul(g.op.softmax(scores, -1), vh);
  return g.op.reshape(g.op.transpose(context, [0, 2, 1, 3]), [0, 0, heads * headDim]);
}
