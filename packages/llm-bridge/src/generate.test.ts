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

  it('streams emoji and CJK split over several byte-level pieces whole, through the model and its cache', async () => {
    // A one-layer "successor machine": embeddings are one-hot, every block weight is zero (the residual stream
    // carries the embedding through), and the head maps token t to t + 1, so greedy decoding spells `pieces`.
    const text = 'Hi 🫠 龘鬱 🧑‍🚀!';
    const pieces = tok.encode(text);
    const n = pieces.length;
    const eos = n;
    const start = n + 1;
    const vocab = n + 2;
    const d = 32;
    const next = (t: number) => (t === start ? 0 : t + 1);
    const head = Array.from({ length: vocab }, (_, row) => Array.from({ length: d }, (_, col) => (col < vocab && next(col) === row ? 1 : 0)));
    const tensors = new Map<string, tf.Tensor>([
      ['model.embed_tokens.weight', tf.eye(vocab, d)],
      ['lm_head.weight', tf.tensor2d(head)],
      ['model.norm.weight', tf.ones([d])],
      ['model.layers.0.input_layernorm.weight', tf.ones([d])],
      ['model.layers.0.post_attention_layernorm.weight', tf.ones([d])],
    ]);
    for (const [name, shape] of [
      ['self_attn.q_proj.weight', [d, d]],
      ['self_attn.q_proj.bias', [d]],
      ['self_attn.k_proj.weight', [d / 2, d]],
      ['self_attn.k_proj.bias', [d / 2]],
      ['self_attn.v_proj.weight', [d / 2, d]],
      ['self_attn.v_proj.bias', [d / 2]],
      ['self_attn.o_proj.weight', [d, d]],
      ['mlp.gate_proj.weight', [8, d]],
      ['mlp.up_proj.weight', [8, d]],
      ['mlp.down_proj.weight', [d, 8]],
    ] as const)
      tensors.set(`model.layers.0.${name}`, tf.zeros([...shape]));
    const machine = Qwen2Model.fromTensors({ vocabSize: vocab, hiddenSize: d, numLayers: 1, numHeads: 2, numKvHeads: 1, intermediateSize: 8, tieWordEmbeddings: false }, tensors);
    const pieceTokenizer = { eosTokenId: eos, decode: (ids: readonly number[], o?: { skipSpecialTokens?: boolean }) => tok.decode(ids.map((t) => (t === eos ? 151645 : pieces[t])), o) };
    const prompt = machine.embed([[start]]);
    const deltas: string[] = [];
    for await (const delta of streamText(machine, pieceTokenizer, { inputsEmbeds: prompt }, { maxNewTokens: 50 })) deltas.push(delta);
    expect(deltas.join('')).toBe(text);
    // Fewer deltas than pieces: the partial pieces of 🫠, 龘, 鬱 and 🧑‍🚀 were held back, never shown as U+FFFD.
    expect(deltas.length).toBeLessThan(n);
    for (const delta of deltas) expect(delta).not.toContain('\uFFFD');
    expect(deltas).toContain(' 🫠');
    prompt.dispose();
    machine.dispose();
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
