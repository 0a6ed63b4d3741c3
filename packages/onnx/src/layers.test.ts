import { applyRotary as tfApplyRotary, attention, causalBias, gelu as tfGelu, initBackend, layerNorm as tfLayerNorm, linear as tfLinear, paddingBias, rmsNorm as tfRmsNorm, rotaryTables as tfRotaryTables, silu as tfSilu, splitHeads as tfSplitHeads, mergeHeads, tensorGrowth, tf } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from './graph-builder.js';
import { applyRotary, causalPaddingBias, gelu, groupedQueryAttention, layerNorm, linear, rmsNorm, rotaryCache, rotaryEmbedding, rotaryTables, silu, skipRmsNorm, splitHeads, transposeMatrix } from './layers.js';
import { f32, i64, maxAbsDiff, pseudoRandom, runGraph } from './test-support.js';

beforeAll(async () => {
  await initBackend();
});

const B = 2;
const L = 3;
const P = 2;
const D = 16;
const H = 4;
const HKV = 2;
const d = 4;

describe('composite layers against the tfjs layers in core', () => {
  it('linear, rmsNorm, layerNorm, gelu and silu', async () => {
    const x = pseudoRandom(B * L * D, 11);
    const w = tf.tensor2d(pseudoRandom(8 * D, 12), [8, D]);
    const bias = tf.tensor1d(pseudoRandom(8, 13));
    const norm = tf.tensor1d(pseudoRandom(D, 14));
    const g = new GraphBuilder('layers');
    const input = g.input('x', 'float32', ['B', 'L', D]);
    g.output('linear', 'float32', ['B', 'L', 8], linear(g, input, 'proj', w, bias));
    g.output('rms', 'float32', ['B', 'L', D], rmsNorm(g, input, 'rms', norm, 1e-6));
    g.output('ln', 'float32', ['B', 'L', D], layerNorm(g, input, 'ln', norm, tf.tensor1d(pseudoRandom(D, 15)), 1e-5));
    g.output('gelu', 'float32', ['B', 'L', D], gelu(g, input));
    g.output('silu', 'float32', ['B', 'L', D], silu(g, input));
    const out = await runGraph(g, { x: f32(x, [B, L, D]) });
    const xt = tf.tensor3d(x, [B, L, D]);
    const lnBias = tf.tensor1d(pseudoRandom(D, 15));
    const ref = {
      linear: tfLinear(xt, w, bias),
      rms: tfRmsNorm(xt, norm, 1e-6),
      ln: tfLayerNorm(xt, norm, lnBias, 1e-5),
      gelu: tfGelu(xt),
      silu: tfSilu(xt),
    };
    for (const [name, t] of Object.entries(ref)) expect(maxAbsDiff(out[name].data as Float32Array, t.dataSync()), name).toBeLessThan(1e-5);
    tf.dispose([w, bias, norm, xt, lnBias, ...Object.values(ref)]);
  });

  it('rotary, causal + padding bias and grouped-query attention over a cache', async () => {
    const qIn = pseudoRandom(B * L * H * d, 21);
    const kNew = pseudoRandom(B * L * HKV * d, 22);
    const vNew = pseudoRandom(B * L * HKV * d, 23);
    const pastK = pseudoRandom(B * HKV * P * d, 24);
    const pastV = pseudoRandom(B * HKV * P * d, 25);
    // Sequence 0 is left-padded by one position; positions count real tokens only (padded slot gets 1).
    const mask = [0, 1, 1, 1, 1, 1, 1, 1, 1, 1];
    const positions = [[2, 3, 4], [2, 3, 4]];
    const g = new GraphBuilder('attention');
    const q = g.input('q', 'float32', ['B', 'L', H * d]);
    const k = g.input('k', 'float32', ['B', 'L', HKV * d]);
    const v = g.input('v', 'float32', ['B', 'L', HKV * d]);
    const pk = g.input('past_k', 'float32', ['B', HKV, 'P', d]);
    const pv = g.input('past_v', 'float32', ['B', HKV, 'P', d]);
    const m = g.input('mask', 'int64', ['B', 'S']);
    const pos = g.input('pos', 'int64', ['B', 'L']);
    const { cos, sin } = rotaryTables(g, pos, d, 10_000);
    const qh = applyRotary(g, splitHeads(g, q, H, d), cos, sin, d);
    const kh = g.op.concat([pk, applyRotary(g, splitHeads(g, k, HKV, d), cos, sin, d)], 2);
    const vh = g.op.concat([pv, splitHeads(g, v, HKV, d)], 2);
    const bias = causalPaddingBias(g, m, q);
    g.output('out', 'float32', ['B', 'L', H * d], groupedQueryAttention(g, { q: qh, k: kh, v: vh, bias, numHeads: H, numKvHeads: HKV, headDim: d }));
    g.output('keys', 'float32', ['B', HKV, 'S', d], kh);
    const out = await runGraph(g, {
      q: f32(qIn, [B, L, H * d]),
      k: f32(kNew, [B, L, HKV * d]),
      v: f32(vNew, [B, L, HKV * d]),
      past_k: f32(pastK, [B, HKV, P, d]),
      past_v: f32(pastV, [B, HKV, P, d]),
      mask: i64(mask, [B, P + L]),
      pos: i64(positions.flat(), [B, L]),
    });
    const ref = tf.tidy(() => {
      const { cos: c, sin: s } = tfRotaryTables(positions[0], d, 10_000);
      const qr = tfApplyRotary(tfSplitHeads(tf.tensor3d(qIn, [B, L, H * d]), H), c, s);
      const kr = tf.concat([tf.tensor4d(pastK, [B, HKV, P, d]), tfApplyRotary(tfSplitHeads(tf.tensor3d(kNew, [B, L, HKV * d]), HKV), c, s)], 2);
      const vr = tf.concat([tf.tensor4d(pastV, [B, HKV, P, d]), tfSplitHeads(tf.tensor3d(vNew, [B, L, HKV * d]), HKV)], 2);
      const biasRef = tf.add(paddingBias(tf.tensor2d(mask, [B, P + L])), causalBias(L, P + L));
      return { out: mergeHeads(attention(qr, kr, vr, { bias: biasRef })), keys: kr };
    });
    expect(maxAbsDiff(out.keys.data as Float32Array, ref.keys.dataSync())).toBeLessThan(1e-5);
    expect(maxAbsDiff(out.out.data as Float32Array, ref.out.dataSync())).toBeLessThan(1e-5);
    tf.dispose(ref);
  });

  it('transposeMatrix matches tf.transpose on a non-square matrix larger than one tile', () => {
    const data = pseudoRandom(70 * 130, 31);
    const t = tf.tensor2d(data, [70, 130]);
    const ref = tf.transpose(t);
    expect(Array.from(transposeMatrix(data, 70, 130))).toEqual(Array.from(ref.dataSync()));
    tf.dispose([t, ref]);
  });

  it('reading tfjs weights into a graph leaks no tensors', () => {
    const w = tf.tensor2d(pseudoRandom(4 * 8, 41), [4, 8]);
    const growth = tensorGrowth(() => {
      const g = new GraphBuilder('leak');
      linear(g, g.input('x', 'float32', [1, 8]), 'p', w);
      g.initializerFromTensor('w2', w);
    });
    expect(growth).toBe(0);
    w.dispose();
  });
});

describe('fused contrib layers against their composite forms', () => {
  it('rotaryEmbedding over rotaryCache applies the rotation of applyRotary over rotaryTables, at any position', async () => {
    const [b, l, heads, d, maxPositions, theta] = [2, 5, 3, 8, 4096, 1e6];
    const g = new GraphBuilder('rotary');
    const x = g.input('x', 'float32', [b, l, heads * d]);
    const positions = g.input('positions', 'int64', [b, l]);
    const tables = rotaryTables(g, positions, d, theta);
    g.output('composite', 'float32', [b, heads, l, d], applyRotary(g, splitHeads(g, x, heads, d), tables.cos, tables.sin, d));
    g.output('fused', 'float32', [b, heads, l, d], splitHeads(g, rotaryEmbedding(g, x, positions, rotaryCache(g, maxPositions, d, theta), heads), heads, d));
    // Large positions too: there the float32 angle rounding of HF (and of rotaryTables) is what the cache must match.
    const out = await runGraph(g, { x: f32(pseudoRandom(b * l * heads * d, 21), [b, l, heads * d]), positions: i64([0, 1, 2, 3, 4, 9, 100, 1000, 3000, 4095], [b, l]) });
    expect(maxAbsDiff(out.fused.data as Float32Array, out.composite.data as Float32Array)).toBeLessThan(1e-5);
  });

  it('skipRmsNorm returns RMSNorm(x + residual) and the sum itself', async () => {
    const [rows, d] = [3, 16];
    const weight = { data: pseudoRandom(d, 22), dims: [d] };
    const g = new GraphBuilder('skip');
    const x = g.input('x', 'float32', [rows, d]);
    const residual = g.input('residual', 'float32', [rows, d]);
    const sum = g.op.add(x, residual);
    g.output('composite', 'float32', [rows, d], rmsNorm(g, sum, 'a', weight, 1e-6));
    const fused = skipRmsNorm(g, x, residual, 'b', weight, 1e-6);
    g.output('fused', 'float32', [rows, d], fused.normed);
    g.output('fusedSum', 'float32', [rows, d], fused.sum);
    g.output('sum', 'float32', [rows, d], sum);
    const out = await runGraph(g, { x: f32(pseudoRandom(rows * d, 23).map((v) => v * 40), [rows, d]), residual: f32(pseudoRandom(rows * d, 24), [rows, d]) });
    expect(maxAbsDiff(out.fused.data as Float32Array, out.composite.data as Float32Array)).toBeLessThan(1e-5);
    expect(maxAbsDiff(out.fusedSum.data as Float32Array, out.sum.data as Float32Array)).toBe(0);
  });
});
