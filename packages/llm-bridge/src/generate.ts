/**
 * Autoregressive decoding (spec §3): one prefill over the prompt embeddings (text with visual embeddings spliced
 * in), then one token per step through the KV cache. Batch size 1, as the reference (`generateBatch` runs several
 * prompts at once). Runs on any {@link CausalDecoder}: the tfjs Qwen2Model (passed as is) or the ONNX Runtime
 * decoder. Every step yields to the event loop, so an AbortSignal fires between tokens and a server stays responsive.
 */
import { AbortedError, BvllmError, Rng, ShapeError, assertShape, tf } from '@bvllm/core';
import { z } from 'zod';
import { TfjsDecoder } from './decoder-runtime-tfjs.js';
import type { CausalDecoder } from './decoder-runtime.js';
import { Qwen2Model } from './qwen2-model.js';
import { sampleNextToken, samplingConfig } from './sampling.js';
import { StopStringMatcher, TextDeltaDecoder } from './text-deltas.js';
import type { Qwen2Tokenizer } from './tokenizer.js';

/** The prompt is longer than the model (or the configured context) accepts; nothing was computed. */
export class PromptTooLongError extends BvllmError {
  constructor(
    readonly promptLength: number,
    readonly limit: number,
  ) {
    super('PROMPT_TOO_LONG', `prompt: ${promptLength} positions (text plus visual tokens) exceed the context of ${limit}`);
  }
}

export const generationConfig = samplingConfig
  .extend({
    /** Most tokens to generate (reference `max_new_tokens` 2048, spec §3). */
    maxNewTokens: z.number().int().positive().default(2048),
    /** Generation stops before any of these strings; they are not part of the output (text generation only). */
    stopStrings: z.array(z.string().min(1)).default([]),
    /** Seed of the sampling generator (spec §10 D4 keeps inference reproducible). */
    seed: z.number().int().nonnegative().default(0),
    /** Context limit in positions, prompt plus output; the model's `max_position_embeddings` when absent or larger. */
    maxContext: z.number().int().positive().optional(),
  })
  .strict();
export type GenerationConfig = z.output<typeof generationConfig>;
export type GenerationConfigInput = z.input<typeof generationConfig>;

/** What to continue: the spliced prompt of one sequence. */
export interface GenerationPrompt {
  /** `[1, L, D]`, a tensor or its row-major values; not consumed. */
  inputsEmbeds: tf.Tensor | Float32Array;
  /** Prompt token ids (placeholders included or not) for the repetition penalty; none if absent. */
  promptIds?: readonly number[];
}

export interface GenerationRuntime {
  /** Ids that end generation (the tokenizer's EOS); they are not yielded. */
  eosTokenIds: readonly number[];
  signal?: AbortSignal;
}

export type FinishReason = 'eos' | 'length' | 'context' | 'stop';

/** A decoder, or a tfjs model generation wraps in one. */
export type DecoderLike = CausalDecoder | Qwen2Model;

export function asCausalDecoder(model: DecoderLike): CausalDecoder {
  return model instanceof Qwen2Model ? TfjsDecoder.of(model) : model;
}

export const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The context limit and a typed error, checked before any compute. */
export function checkPromptLength(model: DecoderLike, promptLength: number, maxContext?: number): number {
  const limit = Math.min(asCausalDecoder(model).maxPositions, maxContext ?? Infinity);
  if (promptLength > limit) throw new PromptTooLongError(promptLength, limit);
  return limit;
}

/** The prompt's embeddings as values `[1, L, D]` and its length L, shape-checked against the decoder. */
export async function readPrompt(decoder: CausalDecoder, prompt: GenerationPrompt): Promise<{ values: Float32Array; length: number }> {
  const embeds = prompt.inputsEmbeds;
  const d = decoder.hiddenSize;
  if (embeds instanceof Float32Array) {
    if (embeds.length === 0 || embeds.length % d !== 0) throw new ShapeError('inputsEmbeds', [1, 'L', d], [embeds.length], `${embeds.length} values are not whole rows of ${d}`);
    return { values: embeds, length: embeds.length / d };
  }
  assertShape('inputsEmbeds', embeds, [1, 'L', d]);
  return { values: (await embeds.data()) as Float32Array, length: embeds.shape[1]! };
}

/**
 * Yields generated ids one by one; returns why it stopped. The caller owns nothing: the cache and logits are
 * disposed here, also when the consumer stops early or the signal aborts (with {@link AbortedError}).
 */
export async function* generateTokens(
  model: DecoderLike,
  prompt: GenerationPrompt,
  options: GenerationConfigInput,
  runtime: GenerationRuntime,
): AsyncGenerator<number, FinishReason> {
  const config = generationConfig.parse(options);
  const decoder = asCausalDecoder(model);
  const { values, length: promptLength } = await readPrompt(decoder, prompt);
  const limit = checkPromptLength(decoder, promptLength, config.maxContext);
  const rng = Rng.fromSeed(config.seed).fork('sampling');
  const seen = [...(prompt.promptIds ?? [])].filter((id) => id >= 0);
  const eos = new Set(runtime.eosTokenIds);
  const abortIfNeeded = () => {
    if (runtime.signal?.aborted) throw new AbortedError('generation', { cause: runtime.signal.reason });
  };
  abortIfNeeded();
  let { logits, cache } = await decoder.prefill({ inputsEmbeds: values, batch: 1, length: promptLength });
  try {
    for (let step = 0; ; step++) {
      const token = sampleNextToken(Float32Array.from(logits), seen, config, rng);
      if (eos.has(token)) return 'eos';
      seen.push(token);
      yield token;
      if (step + 1 >= config.maxNewTokens) return 'length';
      // Feeding the token just produced takes position promptLength + step, which must be below the limit.
      if (promptLength + step + 1 > limit) return 'context';
      await nextTick();
      abortIfNeeded();
      ({ logits, cache } = await decoder.step(cache, [token]));
    }
  } finally {
    // If a step threw, `cache` is the one it already consumed, and freeing it again is a no-op.
    decoder.disposeCache(cache);
  }
}

/** Runs {@link generateTokens} to the end. */
export async function generate(
  model: DecoderLike,
  prompt: GenerationPrompt,
  options: GenerationConfigInput,
  runtime: GenerationRuntime,
): Promise<{ tokens: number[]; finishReason: FinishReason }> {
  const tokens: number[] = [];
  const it = generateTokens(model, prompt, options, runtime);
  for (;;) {
    const next = await it.next();
    if (next.done) return { tokens, finishReason: next.value };
    tokens.push(next.value);
  }
}

/**
 * Text deltas as they are generated: never a broken UTF-8 character, never part of a stop string, special tokens
 * skipped. Stops at EOS (the tokenizer's unless `eosTokenIds` is given), a stop string, or `maxNewTokens`.
 */
export async function* streamText(
  model: DecoderLike,
  tokenizer: Pick<Qwen2Tokenizer, 'decode' | 'eosTokenId'>,
  prompt: GenerationPrompt,
  options: GenerationConfigInput,
  runtime: Partial<GenerationRuntime> = {},
): AsyncGenerator<string, FinishReason> {
  const stopStrings = options.stopStrings ?? [];
  const decoder = new TextDeltaDecoder(tokenizer);
  const matcher = new StopStringMatcher(stopStrings);
  const tokens = generateTokens(model, prompt, options, { eosTokenIds: runtime.eosTokenIds ?? [tokenizer.eosTokenId], signal: runtime.signal });
  try {
    for (;;) {
      const next = await tokens.next();
      if (next.done) {
        const tail = matcher.push(decoder.flush()) + matcher.flush();
        if (tail) yield tail;
        return next.value;
      }
      const delta = matcher.push(decoder.push(next.value));
      if (delta) yield delta;
      if (matcher.done) return 'stop';
    }
  } finally {
    // Stopping early (stop string, consumer break) must still free the KV cache.
    await tokens.return('stop');
  }
}

/** Runs {@link streamText} to the end. */
export async function generateText(
  model: DecoderLike,
  tokenizer: Pick<Qwen2Tokenizer, 'decode' | 'eosTokenId'>,
  prompt: GenerationPrompt,
  options: GenerationConfigInput,
  runtime: Partial<GenerationRuntime> = {},
): Promise<{ text: string; finishReason: FinishReason }> {
  let text = '';
  const it = streamText(model, tokenizer, prompt, options, runtime);
  for (;;) {
    const next = await it.next();
    if (next.done) return { text, finishReason: next.value };
    text += next.value;
  }
}
