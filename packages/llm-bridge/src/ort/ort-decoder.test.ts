import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, initBackend } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../generate.js';
import { exportQwen2Onnx, qwen2Weights } from '../onnx-export/qwen2-onnx.js';
import { Qwen2Model } from '../qwen2-model.js';
import { argmax } from '../sampling.js';
import { OrtDecoder } from './ort-decoder.js';

const onnxDir = fileURLToPath(new URL('../../../../../shared/fixtures/qwen2-tiny-s2-onnx/', import.meta.url));
const tfjsDir = fileURLToPath(new URL('../../../../../shared/fixtures/qwen2-tiny-s2/', import.meta.url));

interface Expected {
  schedule: { prefill_ids: number[]; decode_ids: number[] };
  prefill: { last_logits: number[]; argmax_per_pos: number[] };
  decode: { logits: number[]; argmax: number; position_ids: number[][] }[];
}
const expected = JSON.parse(readFileSync(join(onnxDir, 'expected.json'), 'utf8')) as Expected;
const TOL = 1e-4; // fixture README: max abs error for a float32 runtime

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

let decoder: OrtDecoder;
let model: Qwen2Model;

beforeAll(async () => {
  await initBackend();
  decoder = await OrtDecoder.load(onnxDir, { threads: 1 });
  model = Qwen2Model.load(tfjsDir);
});
afterAll(async () => {
  await decoder.release();
  model.dispose();
});

describe('OrtDecoder on the transformers.js-layout fixture (qwen2-tiny-s2-onnx)', () => {
  it('reads the interface from the graphs: 3 layers, hidden 64, vocabulary 300, no config.json', () => {
    expect([decoder.numLayers, decoder.hiddenSize, decoder.vocabSize, decoder.maxPositions]).toEqual([3, 64, 300, Infinity]);
    expect(decoder.eosTokenIds).toEqual([]);
  });

  it('embeds ids as rows of the checkpoint embedding table', async () => {
    const ids = expected.schedule.prefill_ids.slice(0, 4);
    const ours = await decoder.embed([ids]);
    const table = model.embedTokens.arraySync() as number[][];
    expect(maxAbsDiff(ours, ids.flatMap((id) => table[id]!))).toBe(0);
  });

  it('prefill then five cached steps reproduce the stored logits (1e-4) and every argmax', async () => {
    const { prefill_ids: prefillIds, decode_ids: decodeIds } = expected.schedule;
    const embeds = await decoder.embed([prefillIds]);
    let { logits, cache } = await decoder.prefill({ inputsEmbeds: embeds, batch: 1, length: prefillIds.length });
    expect(maxAbsDiff(logits, expected.prefill.last_logits)).toBeLessThan(TOL);
    expect(argmax(logits)).toBe(expected.prefill.argmax_per_pos.at(-1));
    for (const [k, step] of expected.decode.entries()) {
      ({ logits, cache } = await decoder.step(cache, [decodeIds[k]!]));
      expect(cache.length).toBe(prefillIds.length + k + 1);
      expect(maxAbsDiff(logits, step.logits)).toBeLessThan(TOL);
      expect(argmax(logits)).toBe(step.argmax);
    }
    decoder.disposeCache(cache);
  });

  it('a prompt prefilled in chunks through the cache gives the same logits (left-padded batch, chunks of 5)', async () => {
    const chunked = await OrtDecoder.load(onnxDir, { threads: 1, prefillChunk: 5 });
    const ids = expected.schedule.prefill_ids;
    const short = ids.slice(0, 7);
    const padded = [ids, [...Array<number>(5).fill(0), ...short]];
    const mask = [ids.map(() => 1), [...Array<number>(5).fill(0), ...short.map(() => 1)]];
    const inputsEmbeds = await chunked.embed(padded);
    const whole = await decoder.prefill({ inputsEmbeds, batch: 2, length: 12, attentionMask: mask });
    const parts = await chunked.prefill({ inputsEmbeds, batch: 2, length: 12, attentionMask: mask });
    expect(parts.cache.length).toBe(12);
    expect(maxAbsDiff(parts.logits, whole.logits)).toBeLessThan(1e-5);
    expect(maxAbsDiff(parts.logits.subarray(0, 300), expected.prefill.last_logits)).toBeLessThan(TOL);
    const next = await chunked.step(parts.cache, [1, 2]);
    const nextWhole = await decoder.step(whole.cache, [1, 2]);
    expect(maxAbsDiff(next.logits, nextWhole.logits)).toBeLessThan(1e-5);
    chunked.disposeCache(next.cache);
    decoder.disposeCache(nextWhole.cache);
    await chunked.release();
  });

  it('the argmax at every prefill position matches (each prefix prefilled alone)', async () => {
    const ids = expected.schedule.prefill_ids;
    const argmaxes: number[] = [];
    for (let n = 1; n <= ids.length; n++) {
      const { logits, cache } = await decoder.prefill({ inputsEmbeds: await decoder.embed([ids.slice(0, n)]), batch: 1, length: n });
      argmaxes.push(argmax(logits));
      decoder.disposeCache(cache);
    }
    expect(argmaxes).toEqual(expected.prefill.argmax_per_pos);
  });

  it('greedy generation equals the tfjs Qwen2Model loaded from the safetensors checkpoint', async () => {
    const ids = expected.schedule.prefill_ids;
    const onnx = await generate(decoder, { inputsEmbeds: await decoder.embed([ids]) }, { maxNewTokens: 12 }, { eosTokenIds: [] });
    const embeds = model.embed([ids]);
    const tfjs = await generate(model, { inputsEmbeds: embeds }, { maxNewTokens: 12 }, { eosTokenIds: [] });
    embeds.dispose();
    expect(onnx.finishReason).toBe('length');
    expect(onnx.tokens).toEqual(tfjs.tokens);
    expect(onnx.tokens[0]).toBe(expected.prefill.argmax_per_pos.at(-1));
  });

  it('select keeps the chosen rows: a row taken from a batch of two continues like the lone sequence', async () => {
    const a = expected.schedule.prefill_ids;
    const b = [...a].reverse();
    const embeds = await decoder.embed([a, b]);
    const both = await decoder.prefill({ inputsEmbeds: embeds, batch: 2, length: a.length });
    const kept = decoder.select(both.cache, [1]);
    expect([kept.batch, kept.length]).toEqual([1, a.length]);
    const stepped = await decoder.step(kept, [7]);
    const alone = await decoder.prefill({ inputsEmbeds: await decoder.embed([[...b, 7]]), batch: 1, length: a.length + 1 });
    expect(maxAbsDiff(stepped.logits, alone.logits)).toBeLessThan(TOL);
    decoder.disposeCache(stepped.cache);
    decoder.disposeCache(alone.cache);
  });

  it('our own export with last-position logits runs whole prompts at once and reproduces the fixture steps', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ort-decoder-own-'));
    try {
      exportQwen2Onnx(model.config, qwen2Weights(model), dir, { logitsFor: 'last' });
      const own = await OrtDecoder.load(dir, { threads: 1 });
      expect([own.numLayers, own.hiddenSize, own.vocabSize, own.maxPositions]).toEqual([3, 64, 300, model.config.maxPositionEmbeddings]);
      const { prefill_ids: prefillIds, decode_ids: decodeIds } = expected.schedule;
      let { logits, cache } = await own.prefill({ inputsEmbeds: await own.embed([prefillIds]), batch: 1, length: prefillIds.length });
      expect(maxAbsDiff(logits, expected.prefill.last_logits)).toBeLessThan(TOL);
      for (const [k, step] of expected.decode.entries()) {
        ({ logits, cache } = await own.step(cache, [decodeIds[k]!]));
        expect(maxAbsDiff(logits, step.logits)).toBeLessThan(TOL);
      }
      own.disposeCache(cache);
      await own.release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a folder without the decoder graph is a ConfigError naming the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ort-decoder-'));
    try {
      symlinkSync(join(onnxDir, 'embed_tokens.onnx'), join(dir, 'embed_tokens.onnx'));
      expect(OrtDecoder.exists(dir)).toBe(false);
      const error = await OrtDecoder.load(dir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toContain('decoder_model_merged.onnx');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
