import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AbortedError, initBackend, tf } from '@bvllm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptTooLongError, generate, generateText, streamText } from './generate.js';
import { Qwen2Model } from './qwen2-model.js';
import { qwenTokenizer } from './test-tokenizer.js';

const dir = fileURLToPath(new URL('../../../../shared/fixtures/qwen2-tiny-s2/', import.meta.url));
const ids: number[] = JSON.parse(readFileSync(`${dir}expected.json`, 'utf8')).input_ids;
let model: Qwen2Model;
let embeds: tf.Tensor;

beforeAll(async () => {
  await initBackend();
  model = Qwen2Model.load(dir);
  embeds = model.embed([ids]);
});
afterAll(() => {
  embeds.dispose();
  model.dispose();
});

/** Greedy decoding by recomputing the whole sequence every step, without a cache. */
function greedyWithoutCache(steps: number): number[] {
  const seq = [...ids];
  for (let i = 0; i < steps; i++) {
    const next = tf.tidy(() => {
      const { logits } = model.forward({ inputsEmbeds: model.embed([seq]) });
      return tf.argMax(tf.slice(logits, [0, seq.length - 1, 0], [1, 1, -1]), -1).dataSync()[0];
    });
    seq.push(next);
  }
  return seq.slice(ids.length);
}

describe('generate (spec §3)', () => {
  it('greedy decoding with the KV cache equals full recomputation, and starts with the fixture argmax', async () => {
    const { tokens, finishReason } = await generate(model, { inputsEmbeds: embeds }, { maxNewTokens: 12 }, { eosTokenIds: [] });
    expect(finishReason).toBe('length');
    expect(tokens).toEqual(greedyWithoutCache(12));
    const expected = JSON.parse(readFileSync(`${dir}expected.json`, 'utf8')).argmax_per_pos as number[];
    expect(tokens[0]).toBe(expected[expected.length - 1]);
  });

  it('stops at EOS without yielding it', async () => {
    const greedy = (await generate(model, { inputsEmbeds: embeds }, { maxNewTokens: 8 }, { eosTokenIds: [] })).tokens;
    const eos = greedy[3];
    const cut = greedy.indexOf(eos);
    const { tokens, finishReason } = await generate(model, { inputsEmbeds: embeds }, { maxNewTokens: 8 }, { eosTokenIds: [eos] });
    expect(finishReason).toBe('eos');
    expect(tokens).toEqual(greedy.slice(0, cut));
  });

  it('sampling is reproducible for a seed and differs across seeds', async () => {
    const options = { doSample: true, temperature: 1.5, topP: 1, topK: 50, maxNewTokens: 10 };
    const a = await generate(model, { inputsEmbeds: embeds }, { ...options, seed: 1 }, { eosTokenIds: [] });
    const b = await generate(model, { inputsEmbeds: embeds }, { ...options, seed: 1 }, { eosTokenIds: [] });
    const c = await generate(model, { inputsEmbeds: embeds }, { ...options, seed: 2 }, { eosTokenIds: [] });
    expect(b.tokens).toEqual(a.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it('an over-long prompt is a PromptTooLongError before any compute', async () => {
    const before = tf.memory().numTensors;
    const error = await generate(model, { inputsEmbeds: embeds }, { maxContext: 16 }, { eosTokenIds: [] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PromptTooLongError);
    expect((error as PromptTooLongError).code).toBe('PROMPT_TOO_LONG');
    expect((error as PromptTooLongError).limit).toBe(16);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('stops at the context limit: a prompt of exactly the limit yields one token', async () => {
    const { tokens, finishReason } = await generate(model, { inputsEmbeds: embeds }, { maxContext: 17 }, { eosTokenIds: [] });
    expect(tokens.length).toBe(1);
    expect(finishReason).toBe('context');
  });

  it('an AbortSignal stops generation with AbortedError and frees the cache', async () => {
    const before = tf.memory().numTensors;
    const controller = new AbortController();
    const seen: number[] = [];
    const run = async () => {
      for await (const delta of streamText(model, qwenTokenizer(), { inputsEmbeds: embeds }, { maxNewTokens: 50 }, { eosTokenIds: [], signal: controller.signal })) {
        seen.push(delta.length);
        controller.abort();
      }
    };
    await expect(run()).rejects.toBeInstanceOf(AbortedError);
    expect(seen.length).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('streamText', () => {
  const tok = qwenTokenizer();
  it('deltas concatenate to the decoded tokens and stop strings cut the text', async () => {
    // The fixture's ids < 300 are real Qwen byte-level pieces, some of them lone high bytes.
    const { tokens } = await generate(model, { inputsEmbeds: embeds }, { maxNewTokens: 16 }, { eosTokenIds: [] });
    const full = tok.decode(tokens, { skipSpecialTokens: true });
    const deltas: string[] = [];
    for await (const d of streamText(model, tok, { inputsEmbeds: embeds }, { maxNewTokens: 16 }, { eosTokenIds: [] })) deltas.push(d);
    expect(deltas.join('')).toBe(full);
    const stop = full.slice(4, 7);
    const { text, finishReason } = await generateText(model, tok, { inputsEmbeds: embeds }, { maxNewTokens: 16, stopStrings: [stop] }, { eosTokenIds: [] });
    expect(finishReason).toBe('stop');
    expect(text).toBe(full.slice(0, full.indexOf(stop)));
  });

  it('does not leak tensors, also when the consumer breaks early', async () => {
    const run = async () => {
      for await (const d of streamText(model, tok, { inputsEmbeds: embeds }, { maxNewTokens: 6 }, { eosTokenIds: [] })) if (d.length > 100) break;
      for await (const _ of streamText(model, tok, { inputsEmbeds: embeds }, { maxNewTokens: 6 }, { eosTokenIds: [] })) break;
    };
    await run();
    const before = tf.memory().numTensors;
    await run();
    await run();
    expect(tf.memory().numTensors).toBe(before);
  });
});
