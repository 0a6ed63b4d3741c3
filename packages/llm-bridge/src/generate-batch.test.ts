import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AbortedError, InvalidArgumentError, initBackend, tf } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CausalDecoder } from './decoder-runtime.js';
import { generateBatch } from './generate-batch.js';
import { PromptTooLongError, asCausalDecoder, generate, generateText, type GenerationConfigInput } from './generate.js';
import { OrtDecoder } from './ort/ort-decoder.js';
import { Qwen2Model } from './qwen2-model.js';
import { qwenTokenizer } from './test-tokenizer.js';

const tfjsDir = fileURLToPath(new URL('../../../../shared/fixtures/qwen2-tiny-s2/', import.meta.url));
const onnxDir = fileURLToPath(new URL('../../../../shared/fixtures/qwen2-tiny-s2-onnx/', import.meta.url));
const ids: number[] = JSON.parse(readFileSync(`${tfjsDir}expected.json`, 'utf8')).input_ids;
// Prompts of different lengths, so the batch is left-padded.
const promptIds = [ids.slice(0, 5), ids.slice(2, 14), ids.slice(4, 13), ids.slice(0, 1)];
let model: Qwen2Model;
let ort: OrtDecoder;

beforeAll(async () => {
  await initBackend();
  model = Qwen2Model.load(tfjsDir);
  ort = await OrtDecoder.load(onnxDir, { threads: 1 });
});
afterAll(async () => {
  model.dispose();
  await ort.release();
});

async function prompts(decoder: CausalDecoder) {
  return Promise.all(promptIds.map(async (p) => ({ inputsEmbeds: await decoder.embed([p]), promptIds: p })));
}

async function oneAtATime(decoder: CausalDecoder, options: GenerationConfigInput, eos: number[]) {
  const results = [];
  for (const prompt of await prompts(decoder)) results.push(await generate(decoder, prompt, options, { eosTokenIds: eos }));
  return results;
}

describe.each(['tfjs', 'onnx'] as const)('generateBatch on %s (spec §3)', (runtime) => {
  const decoder = () => (runtime === 'tfjs' ? asCausalDecoder(model) : ort);

  it('greedy: every row equals one-at-a-time generate (prompts of 5, 12, 9 and 1 tokens)', async () => {
    const batch = await generateBatch(decoder(), await prompts(decoder()), { maxNewTokens: 10 }, { eosTokenIds: [] });
    const sequential = await oneAtATime(decoder(), { maxNewTokens: 10 }, []);
    expect(batch).toEqual(sequential);
    expect(new Set(batch.map((r) => r.tokens.join())).size).toBe(4);
  });

  it('per-row stopping: EOS ends some rows early while the others run to maxNewTokens or the context limit', async () => {
    const greedy = await oneAtATime(decoder(), { maxNewTokens: 10 }, []);
    // A token the first row emits at step 2: rows that produce it stop there, the rest keep going.
    const eos = greedy[0]!.tokens[2]!;
    const options = { maxNewTokens: 10, maxContext: 20 };
    const batch = await generateBatch(decoder(), await prompts(decoder()), options, { eosTokenIds: [eos] });
    expect(batch).toEqual(await oneAtATime(decoder(), options, [eos]));
    expect(batch[0]).toEqual({ tokens: greedy[0]!.tokens.slice(0, 2), finishReason: 'eos' });
    expect(new Set(batch.map((r) => r.finishReason))).toEqual(new Set(['eos', 'length', 'context']));
  });

  it('sampling: each row draws as a lone generate with the same seed', async () => {
    const options = { doSample: true, temperature: 1.3, topP: 0.95, maxNewTokens: 6, seed: 3 };
    expect(await generateBatch(decoder(), await prompts(decoder()), options, { eosTokenIds: [] })).toEqual(await oneAtATime(decoder(), options, []));
  });
});

describe('generateBatch with a tokenizer', () => {
  const tok = qwenTokenizer();

  it('texts and stop strings equal generateText row by row', async () => {
    const decoder = asCausalDecoder(model);
    const ps = await prompts(decoder);
    const full = await generateBatch(decoder, ps, { maxNewTokens: 12 }, { tokenizer: tok, eosTokenIds: [] });
    const stop = full[1]!.text!.slice(3, 5);
    const options = { maxNewTokens: 12, stopStrings: [stop] };
    const batch = await generateBatch(decoder, ps, options, { tokenizer: tok, eosTokenIds: [] });
    for (const [i, row] of batch.entries()) {
      const alone = await generateText(decoder, tok, ps[i]!, options, { eosTokenIds: [] });
      expect(row.text).toBe(alone.text);
      expect(row.finishReason).toBe(alone.finishReason);
    }
    expect(batch[1]!.finishReason).toBe('stop');
  });

  it('stop strings without a tokenizer are an InvalidArgumentError', async () => {
    await expect(generateBatch(model, await prompts(asCausalDecoder(model)), { stopStrings: ['x'] })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('generateBatch errors and memory', () => {
  it('an over-long prompt is a PromptTooLongError before any compute', async () => {
    const ps = await prompts(asCausalDecoder(model));
    const before = tf.memory().numTensors;
    await expect(generateBatch(model, ps, { maxContext: 8 }, { eosTokenIds: [] })).rejects.toBeInstanceOf(PromptTooLongError);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an aborted signal stops with AbortedError; repeated runs leak no tensors', async () => {
    const ps = await prompts(asCausalDecoder(model));
    const controller = new AbortController();
    controller.abort();
    await expect(generateBatch(model, ps, { maxNewTokens: 4 }, { eosTokenIds: [], signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
    await generateBatch(model, ps, { maxNewTokens: 4 }, { eosTokenIds: [] });
    const before = tf.memory().numTensors;
    await generateBatch(model, ps, { maxNewTokens: 4 }, { eosTokenIds: [] });
    await generateBatch(model, ps, { maxNewTokens: 4 }, { eosTokenIds: [] });
    expect(tf.memory().numTensors).toBe(before);
  });
});
