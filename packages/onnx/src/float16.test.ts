import { f16ToF32 } from '@bvllm/core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convertToFloat16, MASKED_SCORE_F16, toFloat16 } from './float16.js';
import { GraphBuilder, initializerValues } from './graph-builder.js';
import { applyRotary, causalPaddingBias, gelu, groupedQueryAttention, layerNorm, linear, MASKED_SCORE, rmsNorm, rotaryTables, splitHeads } from './layers.js';
import { quantizeMatMuls, QUANT_PRESETS } from './quantize-pass.js';
import { writeModel } from './serialize.js';
import { createSession, type ort } from './session.js';
import { f32, i64, maxAbsDiff, pseudoRandom, runGraph } from './test-support.js';
import { lazyWeight, type WeightInput } from './weights.js';
import { multiHeadAttention } from './transformer-blocks.js';

const [B, L, D, H, HKV, d] = [2, 5, 32, 4, 2, 8];

const peak = (values: Float32Array) => values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/**
 * A decoder-like block with every layer kind the exporters use: RMSNorm, fused q/k/v linear, rotary, causal +
 * padding bias (a left-padded row, so some query rows are fully masked), grouped-query attention (softmax), a
 * GELU MLP, LayerNorm, and a Q-Former style padded multi-head attention.
 */
function block(lazy: boolean): GraphBuilder {
  const weight = (n: number, dims: number[], seed: number, scale = 0.2): WeightInput => {
    const values = pseudoRandom(n, seed).map((v) => v * scale);
    return lazy ? lazyWeight(dims, () => values.slice()) : { data: values, dims };
  };
  const g = new GraphBuilder('block');
  const x = g.input('x', 'float32', ['B', 'L', D]);
  const mask = g.input('mask', 'int64', ['B', 'L']);
  const pos = g.input('pos', 'int64', ['B', 'L']);
  const h = rmsNorm(g, x, 'norm1', weight(D, [D], 1, 1), 1e-6);
  const qkv = linear(g, h, 'qkv', [weight(H * d * D, [H * d, D], 2), weight(HKV * d * D, [HKV * d, D], 3), weight(HKV * d * D, [HKV * d, D], 4)], weight(H * d + 2 * HKV * d, [H * d + 2 * HKV * d], 5));
  const q = g.op.slice(qkv, [0], [H * d], [-1]);
  const k = g.op.slice(qkv, [H * d], [(H + HKV) * d], [-1]);
  const v = g.op.slice(qkv, [(H + HKV) * d], [(H + 2 * HKV) * d], [-1]);
  const { cos, sin } = rotaryTables(g, pos, d, 10_000);
  const attn = groupedQueryAttention(g, {
    q: applyRotary(g, splitHeads(g, q, H, d), cos, sin, d),
    k: applyRotary(g, splitHeads(g, k, HKV, d), cos, sin, d),
    v: splitHeads(g, v, HKV, d),
    bias: causalPaddingBias(g, mask, x),
    numHeads: H,
    numKvHeads: HKV,
    headDim: d,
  });
  let y = g.op.add(x, linear(g, attn, 'o', weight(D * H * d, [D, H * d], 6)));
  const m = layerNorm(g, y, 'ln', weight(D, [D], 7, 1), weight(D, [D], 8), 1e-5);
  y = g.op.add(y, linear(g, gelu(g, linear(g, m, 'up', weight(64 * D, [64, D], 9), weight(64, [64], 10))), 'down', weight(D * 64, [D, 64], 11)));
  // Padded key mask as in the Q-Former: MASKED_SCORE where mask = 0.
  const keyBias = g.op.unsqueeze(g.op.where(g.op.equal(mask, g.int64([0], true)), g.float(MASKED_SCORE), g.float(0)), [1, 2]);
  const cross = multiHeadAttention(g, y, y, y, H, D / H, keyBias);
  g.output('y', 'float32', ['B', 'L', D], g.op.add(y, cross));
  g.output('bias', 'float32', ['B', 1, 'L', 'L'], causalPaddingBias(g, mask, x));
  return g;
}

function feeds(): Record<string, ort.Tensor> {
  // Row 0 is left-padded by two positions: its first two query rows see only padding (fully masked).
  return {
    x: f32(pseudoRandom(B * L * D, 20).map((v) => v * 3), [B, L, D]),
    mask: i64([0, 0, 1, 1, 1, 1, 1, 1, 1, 1], [B, L]),
    pos: i64([1, 1, 0, 1, 2, 0, 1, 2, 3, 4], [B, L]),
  };
}

describe('convertToFloat16', () => {
  const dir = mkdtempSync(join(tmpdir(), 'onnx-f16-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('float32 values map to float16 bits; MASKED_SCORE to MASKED_SCORE_F16, overflow clamps to ±65504', () => {
    const bits = toFloat16(Float32Array.of(1, -2.5, MASKED_SCORE, 1e6, -1e6, 1e-3));
    expect(Array.from(bits, f16ToF32)).toEqual([1, -2.5, MASKED_SCORE_F16, 65504, -65504, f16ToF32(bits[5])]);
    expect(Math.abs(f16ToF32(bits[5]) - 1e-3)).toBeLessThan(1e-6);
  });

  it('keeps float32 graph I/O, makes the weights float16 (rotary and RMSNorm statistics stay float32), and matches the float32 graph on onnxruntime CPU', async () => {
    const reference = await runGraph(block(false), feeds());
    const g = block(false);
    convertToFloat16(g);
    expect(g.inputs.map((i) => i.dtype)).toEqual(['float32', 'int64', 'int64']);
    expect(g.outputs.map((o) => o.dtype)).toEqual(['float32', 'float32']);
    const inits = [...g.initializers.values()];
    for (const name of ['qkv.weight', 'qkv.bias', 'o.weight', 'ln.weight', 'norm1.weight', 'up.weight', 'down.weight']) expect(g.initializers.get(name)!.dtype, name).toBe('float16');
    // Only the rotary frequencies and RMSNorm's constants stay float32.
    expect(inits.filter((i) => i.dtype === 'float32').every((i) => i.name.startsWith('rotary_inv_freq') || i.dims.length === 0)).toBe(true);
    const out = await runGraph(g, feeds());
    expect(out.y.type).toBe('float32');
    const y = out.y.data as Float32Array;
    expect(y.every(Number.isFinite)).toBe(true);
    // float16 keeps 11 significant bits (5e-4 relative rounding per op): after ~30 ops, within 1% of the largest output.
    const ref = reference.y.data as Float32Array;
    expect(maxAbsDiff(y, ref)).toBeLessThan(1e-2 * peak(ref));
    // The attention mask constant is the finite float16 masked score, not −∞.
    expect(Math.min(...(out.bias.data as Float32Array))).toBe(MASKED_SCORE_F16);
  });

  it('retargets Cast-to-float32 outside float32 regions, converts ConstantOfShape values, and keeps a float32 initializer output', async () => {
    const g = new GraphBuilder('casts');
    const x = g.input('x', 'float32', ['n', 4]);
    const mask = g.input('mask', 'int64', ['n', 4]);
    const ones = g.op.constantOfShape(g.op.shape(x), 0.5);
    const masked = g.op.mul(g.op.add(x, ones), g.op.cast(mask, 'float32'));
    g.output('y', 'float32', ['n', 4], masked);
    g.output('table', 'float32', [4], g.initializer('table', Float32Array.of(1, 2, 3, 4), [4]));
    const feed = { x: f32([0.25, -1, 2, 3, 1, 1, 1, 1], [2, 4]), mask: i64([1, 0, 1, 1, 0, 1, 1, 0], [2, 4]) };
    const reference = await runGraph(g, feed);
    convertToFloat16(g);
    const inner = g.nodes.filter((n) => n.opType === 'Cast' && n.inputs[0] === 'mask');
    expect(inner.map((n) => n.attributes.to)).toEqual([10]);
    expect(g.nodes.find((n) => n.opType === 'ConstantOfShape')!.attributes.value).toMatchObject({ tensor: { dtype: 'float16' } });
    expect(g.initializers.get('table')!.dtype).toBe('float32');
    const out = await runGraph(g, feed);
    // Every value here is exact in float16.
    expect(Array.from(out.y.data as Float32Array)).toEqual(Array.from(reference.y.data as Float32Array));
    expect(Array.from(out.table.data as Float32Array)).toEqual([1, 2, 3, 4]);
  });

  it('a lazy graph converts lazily and equals the eager float16 graph bit for bit', async () => {
    const eager = block(false);
    convertToFloat16(eager);
    const lazy = block(true);
    convertToFloat16(lazy);
    expect(lazy.initializers.get('qkv.weight')!.load).toBeDefined();
    expect(initializerValues(lazy.initializers.get('qkv.weight')!)).toEqual(initializerValues(eager.initializers.get('qkv.weight')!));
    const written = writeModel(lazy, join(dir, 'lazy-f16.onnx'));
    const session = await createSession(written.path, { threads: 1 });
    const out = await session.run(feeds());
    await session.release();
    expect(Array.from(out.y.data as Float32Array)).toEqual(Array.from((await runGraph(eager, feeds())).y.data as Float32Array));
  });

  it('after int4 quantisation: float16 scales and activations run MatMulNBits on onnxruntime CPU', async () => {
    const reference = block(false);
    quantizeMatMuls(reference, QUANT_PRESETS.int4);
    const expected = (await runGraph(reference, feeds())).y.data as Float32Array;
    const g = block(true);
    quantizeMatMuls(g, QUANT_PRESETS.int4);
    convertToFloat16(g);
    expect([...g.initializers.values()].filter((i) => i.name.includes('.scales')).every((i) => i.dtype === 'float16')).toBe(true);
    const written = writeModel(g, join(dir, 'int4-f16.onnx'));
    const session = await createSession(written.path, { threads: 1 });
    const y = (await session.run(feeds())).y.data as Float32Array;
    await session.release();
    expect(maxAbsDiff(y, expected)).toBeLessThan(1e-2 * peak(expected));
  });
});
