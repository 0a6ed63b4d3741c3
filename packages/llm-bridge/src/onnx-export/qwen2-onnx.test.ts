import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, tensorGrowth } from '@bvllm/core';
import { checkModel, decodeModel } from '@bvllm/onnx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Qwen2Model } from '../qwen2-model.js';
import { buildQwen2DecoderGraph, buildQwen2EmbedGraph, exportQwen2Onnx, qwen2Weights, type Qwen2OnnxExport } from './qwen2-onnx.js';
import { OnnxQwen2Runner, greedy, maxAbsDiff } from './test-runner.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../../../../shared/fixtures/${name}/`, import.meta.url));

interface Expected {
  schedule: { prefill_ids: number[]; decode_ids: number[] };
  prefill: { last_logits: number[]; argmax_per_pos: number[] };
  decode: { logits: number[]; argmax: number }[];
  onnx: Record<string, { inputs: Declared[]; outputs: Declared[]; opset: Record<string, number>; ir_version: number }>;
}
interface Declared {
  name: string;
  dtype: string;
  shape: (number | string)[];
}
const expected: Expected = JSON.parse(readFileSync(join(fixture('qwen2-tiny-s2-onnx'), 'expected.json'), 'utf8'));

const DTYPE_NAMES: Record<number, string> = { 1: 'float32', 7: 'int64' };

/** The declared inputs or outputs of an ONNX file, in the form of the fixture's `onnx` section. */
function declared(path: string): { inputs: Declared[]; outputs: Declared[]; opset: Record<string, number>; ir_version: number } {
  const model = decodeModel(readFileSync(path));
  const info = (values: NonNullable<typeof model.graph>['input']) =>
    (values ?? []).map((v) => ({
      name: v.name!,
      dtype: DTYPE_NAMES[v.type!.tensorType!.elemType!],
      shape: v.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue))),
    }));
  return {
    inputs: info(model.graph!.input),
    outputs: info(model.graph!.output),
    opset: Object.fromEntries(model.opsetImport!.map((o) => [o.domain || 'ai.onnx', Number(o.version)])),
    ir_version: Number(model.irVersion),
  };
}

let model: Qwen2Model;
let f32Export: Qwen2OnnxExport;
let runner: OnnxQwen2Runner;

beforeAll(async () => {
  await initBackend();
  model = Qwen2Model.load(fixture('qwen2-tiny-s2'));
  f32Export = exportQwen2Onnx(model.config, qwen2Weights(model), mkdtempSync(join(tmpdir(), 'qwen2-onnx-')));
  runner = await OnnxQwen2Runner.open(f32Export.dir);
});

afterAll(async () => {
  await runner.release();
  model.dispose();
});

describe('exportQwen2Onnx against qwen2-tiny-s2-onnx', () => {
  it('declares exactly the fixture interface (names, order, dtypes, symbolic dims, standard opset, IR version) and passes checkModel', () => {
    for (const file of ['embed_tokens.onnx', 'decoder_model_merged.onnx']) {
      const path = join(f32Export.dir, file);
      const ours = declared(path);
      const theirs = expected.onnx[file];
      expect(ours.inputs).toEqual(theirs.inputs.map(({ name, dtype, shape }) => ({ name, dtype, shape })));
      expect(ours.outputs).toEqual(theirs.outputs.map(({ name, dtype, shape }) => ({ name, dtype, shape })));
      // The decoder also imports com.microsoft for its fused contrib ops (RotaryEmbedding, SkipSimplifiedLayerNormalization),
      // which every onnxruntime build has; the standard opset is the fixture's.
      const { 'com.microsoft': contrib, ...standard } = ours.opset;
      expect(standard).toEqual(theirs.opset);
      expect(contrib).toBe(file === 'decoder_model_merged.onnx' ? 1 : undefined);
      expect(ours.ir_version).toBe(theirs.ir_version);
      checkModel(readFileSync(path));
    }
    expect(JSON.parse(readFileSync(join(f32Export.dir, 'config.json'), 'utf8'))).toMatchObject({ model_type: 'qwen2', num_key_value_heads: 2, tie_word_embeddings: false });
  });

  it('building the graphs reads the weights without leaving tensors behind', () => {
    expect(tensorGrowth(() => void [buildQwen2EmbedGraph(model.config, qwen2Weights(model)), buildQwen2DecoderGraph(model.config, qwen2Weights(model), { quantize: 'int4' })])).toBe(0);
  });

  it('runs the fixture schedule (prefill 12, then 5 cached steps): logits within 1e-4, argmax exact', async () => {
    const { prefill_ids: prefillIds, decode_ids: decodeIds } = expected.schedule;
    let step = await runner.step([prefillIds], [prefillIds.map(() => 1)]);
    expect(step.argmax[0]).toEqual(expected.prefill.argmax_per_pos);
    expect(maxAbsDiff(step.lastLogits[0], expected.prefill.last_logits)).toBeLessThan(1e-4);
    for (const [k, id] of decodeIds.entries()) {
      step = await runner.step([[id]], [Array(prefillIds.length + k + 1).fill(1)], step.present);
      expect(maxAbsDiff(step.lastLogits[0], expected.decode[k].logits), `decode step ${k}`).toBeLessThan(1e-4);
      expect(step.argmax[0][0]).toBe(expected.decode[k].argmax);
    }
  });

  it('batch 2 with left padding gives each sequence the logits it gets alone, in prefill and in a cached step', async () => {
    const long = expected.schedule.prefill_ids;
    const short = long.slice(5);
    const pad = long.length - short.length;
    const batched = await runner.step([long, [...Array(pad).fill(0), ...short]], [long.map(() => 1), [...Array(pad).fill(0), ...short.map(() => 1)]]);
    const alone = await Promise.all([runner.step([long], [long.map(() => 1)]), runner.step([short], [short.map(() => 1)])]);
    expect(maxAbsDiff(batched.allLogits[0], alone[0].allLogits[0])).toBeLessThan(1e-4);
    // Sequence 2's real positions are its last `short.length` rows.
    expect(maxAbsDiff(batched.allLogits[1].slice(pad * runner.vocabSize), alone[1].allLogits[0])).toBeLessThan(1e-4);
    const next = [7, 9];
    const batchedStep = await runner.step([[next[0]], [next[1]]], [Array(long.length + 1).fill(1), [...Array(pad).fill(0), ...Array(short.length + 1).fill(1)]], batched.present);
    const aloneSteps = await Promise.all([
      runner.step([[next[0]]], [Array(long.length + 1).fill(1)], alone[0].present),
      runner.step([[next[1]]], [Array(short.length + 1).fill(1)], alone[1].present),
    ]);
    expect(maxAbsDiff(batchedStep.lastLogits[0], aloneSteps[0].lastLogits[0])).toBeLessThan(1e-4);
    expect(maxAbsDiff(batchedStep.lastLogits[1], aloneSteps[1].lastLogits[0])).toBeLessThan(1e-4);
  });
});

describe('logitsFor: last', () => {
  it('returns the last position only, equal to the last row of the full export, in prefill and a cached step', async () => {
    const exported = exportQwen2Onnx(model.config, qwen2Weights(model), mkdtempSync(join(tmpdir(), 'qwen2-onnx-last-')), { logitsFor: 'last' });
    expect(declared(exported.decoder).outputs[0].shape).toEqual(['batch_size', 1, 300]);
    const last = await OnnxQwen2Runner.open(exported.dir);
    const ids = expected.schedule.prefill_ids;
    const step = await last.step([ids], [ids.map(() => 1)]);
    expect(step.allLogits[0]).toHaveLength(300);
    expect(maxAbsDiff(step.allLogits[0], expected.prefill.last_logits)).toBeLessThan(1e-4);
    const next = await last.step([[expected.schedule.decode_ids[0]]], [Array(ids.length + 1).fill(1)], step.present);
    expect(maxAbsDiff(next.allLogits[0], expected.decode[0].logits)).toBeLessThan(1e-4);
    await last.release();
  });
});

describe('tied embeddings and external data (qwen2-tiny-s3)', () => {
  it('a tied model exported with external data reproduces the fixture over its whole sequence', async () => {
    const s3: { input_ids: number[]; last_logits: number[]; argmax_per_pos: number[] } = JSON.parse(readFileSync(join(fixture('qwen2-tiny-s3'), 'expected.json'), 'utf8'));
    const tied = Qwen2Model.load(fixture('qwen2-tiny-s3'));
    const exported = exportQwen2Onnx(tied.config, qwen2Weights(tied), mkdtempSync(join(tmpdir(), 'qwen2-onnx-s3-')), { externalDataThreshold: 0 });
    tied.dispose();
    expect(readFileSync(`${exported.decoder}.data`).byteLength).toBeGreaterThan(0);
    const s3Runner = await OnnxQwen2Runner.open(exported.dir);
    const ids = s3.input_ids;
    const step = await s3Runner.step([ids], [ids.map(() => 1)]);
    expect(step.argmax[0]).toEqual(s3.argmax_per_pos);
    expect(maxAbsDiff(step.lastLogits[0], s3.last_logits)).toBeLessThan(1e-4);
    await s3Runner.release();
  });
});

describe('quantisation (int8, int4, dynamic-int8) against the float32 export', () => {
  /**
   * A loose first-order bound: each quantised weight is off by at most half a block scale, a relative error
   * ε_w ≤ 1 / (2·levels) of its block's range (levels 127 for int8 symmetric, 15 for int4), and the int8 activation
   * rounding of accuracy level 4 adds ε_a ≤ 1 / 254 (dynamic-int8: 63 levels per column, uint8 activations per
   * call, the same ε_a of the call's range); each of the 4·layers + 1 quantised MatMuls on a logit's path adds
   * at most about ε_w + ε_a of the logit scale.
   */
  const bound = (levels: number) => (model.config.numLayers * 4 + 1) * (1 / (2 * levels) + 1 / 254);

  for (const [quantize, levels] of [['int8', 127], ['int4', 15], ['dynamic-int8', 63]] as const)
    it(`${quantize}: logits within the propagated quantisation bound; error and greedy agreement measured`, async () => {
      const exported = exportQwen2Onnx(model.config, qwen2Weights(model), mkdtempSync(join(tmpdir(), `qwen2-onnx-${quantize}-`)), { quantize });
      expect(exported.quantized!.quantized).toHaveLength(model.config.numLayers * 4 + 1);
      expect(exported.quantized!.bytesAfter).toBeLessThan(exported.quantized!.bytesBefore / (quantize === 'int4' ? 6 : 3.5));
      const q = await OnnxQwen2Runner.open(exported.dir);
      const ids = [...expected.schedule.prefill_ids, ...expected.schedule.decode_ids];
      const exact = await runner.step([ids], [ids.map(() => 1)]);
      const approx = await q.step([ids], [ids.map(() => 1)]);
      const scale = Math.max(...exact.allLogits[0].map(Math.abs));
      const err = maxAbsDiff(approx.allLogits[0], exact.allLogits[0]);
      expect(err).toBeLessThan(bound(levels) * scale);
      const agreeSchedule = exact.argmax[0].filter((t, i) => t === approx.argmax[0][i]).length;
      const greedyExact = await greedy(runner, expected.schedule.prefill_ids, 32);
      const greedyApprox = await greedy(q, expected.schedule.prefill_ids, 32);
      const firstDivergence = greedyExact.findIndex((t, i) => t !== greedyApprox[i]);
      console.log(
        `[qwen2-tiny-s2 ${quantize}] max |logit error| ${err.toExponential(3)} (logit scale ${scale.toFixed(3)}), ` +
          `argmax agreement ${agreeSchedule}/${ids.length} on the schedule, greedy 32 steps: ${firstDivergence < 0 ? 'identical' : `first divergence at step ${firstDivergence}`}, ` +
          `${greedyExact.filter((t, i) => t === greedyApprox[i]).length}/32 tokens equal`,
      );
      await q.release();
    });
});
