import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TensorSource, initBackend, readHfConfig, tf, type WeightSource } from '@bvllm/core';
import { createSession, ort, sourceWeights, writeModel } from '@bvllm/onnx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loraMergedSource } from '../lora-merge-source.js';
import { loadLoraAdapter } from '../lora-peft.js';
import { qwen2ConfigFromHf } from '../qwen2-config.js';
import { Qwen2Model } from '../qwen2-model.js';
import { buildQwen2DecoderGraph, buildQwen2EmbedGraph, exportQwen2Onnx, qwen2Weights } from './qwen2-onnx.js';
import { OnnxQwen2Runner, maxAbsDiff } from './test-runner.js';

// issue #18: the decoder exported straight from a safetensors folder, one tensor at a time, equals the export of
// the tfjs model and the fixture's logits (spec §1.2: the LLM is Qwen2, logits of the HF Qwen2ForCausalLM).
const fixture = (name: string) => fileURLToPath(new URL(`../../../../../shared/fixtures/${name}/`, import.meta.url));
const tmp = (label: string) => mkdtempSync(join(tmpdir(), `qwen2-streamed-${label}-`));

interface Schedule {
  schedule: { prefill_ids: number[]; decode_ids: number[] };
  prefill: { last_logits: number[]; argmax_per_pos: number[] };
  decode: { logits: number[]; argmax: number }[];
}

/** `source` with a count of reads per key. */
function counting(source: WeightSource): { source: WeightSource; reads: Map<string, number> } {
  const reads = new Map<string, number>();
  const read = (key: string) => {
    reads.set(key, (reads.get(key) ?? 0) + 1);
    return source.read(key);
  };
  return { source: { keys: () => source.keys(), has: (k) => source.has(k), info: (k) => source.info(k), read, origin: (k) => source.origin(k), close: () => source.close() }, reads };
}

const runners: OnnxQwen2Runner[] = [];
async function open(dir: string): Promise<OnnxQwen2Runner> {
  const runner = await OnnxQwen2Runner.open(dir);
  runners.push(runner);
  return runner;
}

beforeAll(async () => {
  await initBackend();
});
afterAll(async () => {
  for (const r of runners) await r.release();
});

/** Exports `dir` from its safetensors through lazy weights, and from the tfjs model loaded from the same folder. */
async function bothExports(name: string, options: { quantize?: 'int4'; dtype?: 'float16' } = {}): Promise<{ streamed: OnnxQwen2Runner; tfjs: OnnxQwen2Runner; streamedDir: string }> {
  const dir = fixture(name);
  const source = TensorSource.fromDir(dir);
  const streamedDir = tmp(name);
  exportQwen2Onnx(qwen2ConfigFromHf(readHfConfig(dir)), sourceWeights(source), streamedDir, options);
  source.close();
  const model = Qwen2Model.load(dir);
  const tfjsDir = tmp(`${name}-tfjs`);
  exportQwen2Onnx(model.config, qwen2Weights(model), tfjsDir, options);
  model.dispose();
  return { streamed: await open(streamedDir), tfjs: await open(tfjsDir), streamedDir };
}

describe('exportQwen2Onnx from a WeightSource (lazy weights)', () => {
  it('qwen2-tiny-s2: external data written, logits equal the tfjs-path export and the fixture schedule within 1e-4', async () => {
    const expected: Schedule = JSON.parse(readFileSync(join(fixture('qwen2-tiny-s2-onnx'), 'expected.json'), 'utf8'));
    const { streamed, tfjs, streamedDir } = await bothExports('qwen2-tiny-s2');
    // A graph with lazy initializers always writes external data: weights stream to disk, never into the proto.
    expect(existsSync(join(streamedDir, 'decoder_model_merged.onnx.data'))).toBe(true);
    const { prefill_ids: prefill, decode_ids: decode } = expected.schedule;
    let a = await streamed.step([prefill], [prefill.map(() => 1)]);
    let b = await tfjs.step([prefill], [prefill.map(() => 1)]);
    expect(maxAbsDiff(a.allLogits[0], b.allLogits[0])).toBeLessThan(1e-4);
    expect(maxAbsDiff(a.lastLogits[0], expected.prefill.last_logits)).toBeLessThan(1e-4);
    expect(a.argmax[0]).toEqual(expected.prefill.argmax_per_pos);
    for (const [k, id] of decode.entries()) {
      const mask = [Array(prefill.length + k + 1).fill(1)];
      a = await streamed.step([[id]], mask, a.present);
      b = await tfjs.step([[id]], mask, b.present);
      expect(maxAbsDiff(a.lastLogits[0], expected.decode[k].logits), `decode step ${k}`).toBeLessThan(1e-4);
      expect(maxAbsDiff(a.lastLogits[0], b.lastLogits[0])).toBeLessThan(1e-4);
    }
  });

  it('qwen2-tiny-s3 (tied embeddings): the head comes from model.embed_tokens.weight; logits equal the fixture within 1e-4', async () => {
    const s3: { input_ids: number[]; last_logits: number[]; argmax_per_pos: number[] } = JSON.parse(readFileSync(join(fixture('qwen2-tiny-s3'), 'expected.json'), 'utf8'));
    const { streamed, tfjs } = await bothExports('qwen2-tiny-s3');
    const ids = s3.input_ids;
    const a = await streamed.step([ids], [ids.map(() => 1)]);
    const b = await tfjs.step([ids], [ids.map(() => 1)]);
    expect(a.argmax[0]).toEqual(s3.argmax_per_pos);
    expect(maxAbsDiff(a.lastLogits[0], s3.last_logits)).toBeLessThan(1e-4);
    expect(maxAbsDiff(a.allLogits[0], b.allLogits[0])).toBeLessThan(1e-4);
  });

  it('int4 from lazy weights quantises the same codes as from eager weights: identical logits', async () => {
    const expected: Schedule = JSON.parse(readFileSync(join(fixture('qwen2-tiny-s2-onnx'), 'expected.json'), 'utf8'));
    const { streamed, tfjs } = await bothExports('qwen2-tiny-s2', { quantize: 'int4' });
    const ids = expected.schedule.prefill_ids;
    const a = await streamed.step([ids], [ids.map(() => 1)]);
    const b = await tfjs.step([ids], [ids.map(() => 1)]);
    expect(maxAbsDiff(a.allLogits[0], b.allLogits[0])).toBeLessThan(1e-5);
  });

  it('float16 weights run on onnxruntime CPU: half the external data, logits within f16 tolerance of the fixture in prefill and a cached step', async () => {
    const expected: Schedule = JSON.parse(readFileSync(join(fixture('qwen2-tiny-s2-onnx'), 'expected.json'), 'utf8'));
    const { streamed: half, streamedDir } = await bothExports('qwen2-tiny-s2', { dtype: 'float16' });
    const f32Dir = tmp('f32');
    const source = TensorSource.fromDir(fixture('qwen2-tiny-s2'));
    exportQwen2Onnx(qwen2ConfigFromHf(readHfConfig(fixture('qwen2-tiny-s2'))), sourceWeights(source), f32Dir);
    source.close();
    const data = (dir: string) => statSync(join(dir, 'decoder_model_merged.onnx.data')).size;
    expect(data(streamedDir)).toBeLessThan(0.6 * data(f32Dir));
    const ids = expected.schedule.prefill_ids;
    const step = await half.step([ids], [ids.map(() => 1)]);
    const scale = Math.max(...expected.prefill.last_logits.map(Math.abs));
    const error = maxAbsDiff(step.lastLogits[0], expected.prefill.last_logits);
    console.log(`[qwen2-tiny-s2 f16] max |logit error| ${error.toExponential(2)} (logit scale ${scale.toFixed(3)})`);
    // f16's relative step 2⁻¹⁰ ≈ 1e-3 per value, compounded over the layers' MatMuls: about a percent of the logit scale.
    expect(error).toBeLessThan(1e-2 * scale);
    const next = await half.step([[expected.schedule.decode_ids[0]]], [Array(ids.length + 1).fill(1)], step.present);
    expect(maxAbsDiff(next.lastLogits[0], expected.decode[0].logits)).toBeLessThan(1e-2 * scale);
  });

  it('int4 with float16 (the CUDA configuration) runs on CPU within the int4 quantisation bound of float32', async () => {
    const expected: Schedule = JSON.parse(readFileSync(join(fixture('qwen2-tiny-s2-onnx'), 'expected.json'), 'utf8'));
    const { streamed: halfInt4 } = await bothExports('qwen2-tiny-s2', { quantize: 'int4', dtype: 'float16' });
    const { streamed: int4 } = await bothExports('qwen2-tiny-s2', { quantize: 'int4' });
    const { streamed: f32 } = await bothExports('qwen2-tiny-s2');
    const ids = expected.schedule.prefill_ids;
    const exact = await f32.step([ids], [ids.map(() => 1)]);
    const approx = await halfInt4.step([ids], [ids.map(() => 1)]);
    const scale = Math.max(...exact.allLogits[0].map(Math.abs));
    const config = qwen2ConfigFromHf(readHfConfig(fixture('qwen2-tiny-s2')));
    // The bound of qwen2-onnx.test.ts: each of the 4·layers + 1 int4 MatMuls adds at most ε_w + ε_a (1/30 + 1/254) of
    // the logit scale; f16's 2⁻¹⁰ relative rounding is two orders of magnitude below that.
    const bound = (config.numLayers * 4 + 1) * (1 / 30 + 1 / 254) * scale;
    const error = maxAbsDiff(approx.allLogits[0], exact.allLogits[0]);
    const int4Error = maxAbsDiff((await int4.step([ids], [ids.map(() => 1)])).allLogits[0], exact.allLogits[0]);
    console.log(`[qwen2-tiny-s2 int4 f16] max |logit error| ${error.toExponential(2)} (int4 f32: ${int4Error.toExponential(2)}, bound ${bound.toFixed(2)})`);
    expect(error).toBeLessThan(bound);
  });

  it('a PEFT LoRA merged at export (loraMergedSource) equals the adapter applied at run time in tfjs and the fixture (1e-4)', async () => {
    const base = fixture('qwen2-tiny-s2');
    const loraDir = fixture('qwen2-tiny-s2-lora');
    const expected: { input_ids: number[]; last_logits: number[]; argmax_per_pos: number[] } = JSON.parse(readFileSync(join(loraDir, 'expected.json'), 'utf8'));
    const source = loraMergedSource(TensorSource.fromDir(base), loraDir);
    const dir = tmp('lora');
    exportQwen2Onnx(qwen2ConfigFromHf(readHfConfig(base)), sourceWeights(source), dir);
    source.close();
    const merged = await open(dir);
    const ids = expected.input_ids;
    const step = await merged.step([ids], [ids.map(() => 1)]);
    expect(step.argmax[0]).toEqual(expected.argmax_per_pos);
    expect(maxAbsDiff(step.lastLogits[0], expected.last_logits)).toBeLessThan(1e-4);
    // The same adapter unmerged, as tfjs runs it while training.
    const model = Qwen2Model.load(base);
    loadLoraAdapter(model, loraDir);
    const runtime = tf.tidy(() => {
      const embeds = model.embed(tf.tensor2d([ids], undefined, 'int32'));
      return model.forward({ inputsEmbeds: embeds, logitsFor: 'last' }).logits.dataSync() as Float32Array;
    });
    expect(maxAbsDiff(step.lastLogits[0], runtime)).toBeLessThan(1e-4);
    model.dispose();
  });

  for (const options of [{}, { quantize: 'int4' as const }, { dtype: 'float16' as const }])
    it(`building reads no tensor; the export (${JSON.stringify(options)}) reads every checkpoint tensor exactly once (bounded memory)`, () => {
      const dir = fixture('qwen2-tiny-s2');
      const config = qwen2ConfigFromHf(readHfConfig(dir));
      const { source, reads } = counting(TensorSource.fromDir(dir));
      buildQwen2EmbedGraph(config, sourceWeights(source));
      buildQwen2DecoderGraph(config, sourceWeights(source), options);
      expect(reads.size).toBe(0);
      exportQwen2Onnx(config, sourceWeights(source), tmp('reads'), options);
      source.close();
      expect([...reads.keys()].sort()).toEqual(source.keys().sort());
      expect(Math.max(...reads.values())).toBe(1);
    });

  it('a float16 embedding table (the default with quantize) gathers the float32 rows to f16 rounding, in half the bytes', async () => {
    const dir = fixture('qwen2-tiny-s2');
    const config = qwen2ConfigFromHf(readHfConfig(dir));
    const source = TensorSource.fromDir(dir);
    const table = source.read('model.embed_tokens.weight');
    const ids = [[0, 1, 2, config.vocabSize - 1]];
    const run = async (embedTable: 'float32' | 'float16') => {
      const file = join(tmp(`embed-${embedTable}`), 'embed_tokens.onnx');
      writeModel(buildQwen2EmbedGraph(config, sourceWeights(source), { embedTable }), file);
      const session = await createSession(file, { threads: 1 });
      const out = await session.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids[0], BigInt), [1, ids[0].length]) });
      await session.release();
      return { values: out.inputs_embeds.data as Float32Array, bytes: statSync(`${file}.data`).size };
    };
    const [f32, f16] = [await run('float32'), await run('float16')];
    source.close();
    const d = config.hiddenSize;
    ids[0].forEach((id, row) => {
      for (let j = 0; j < d; j++) {
        const want = table[id * d + j];
        expect(f32.values[row * d + j]).toBe(want);
        // f16 keeps 11 significant bits: a relative error of at most 2^-11 (values here are far from f16's range ends).
        expect(Math.abs(f16.values[row * d + j] - want)).toBeLessThanOrEqual(Math.abs(want) * 2 ** -11 + 2 ** -24);
      }
    });
    expect(f16.bytes).toBeLessThan(0.51 * f32.bytes);
  });
});
