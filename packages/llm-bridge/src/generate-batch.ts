/**
 * Several prompts decoded together for throughput (evaluation): the prompts are LEFT-padded into one batch with
 * an attention mask (so every row's last position is real and the rotary positions come from the mask), each row
 * stops on its own (EOS, `maxNewTokens`, the context limit, a stop string), and a finished row leaves the batch so
 * it costs no more compute. Each row samples from its own generator seeded as a lone `generate` would, so the
 * results equal one-at-a-time generation, greedy or sampled.
 */
import { AbortedError, InvalidArgumentError, Rng } from '@bvllm/core';
import {
  asCausalDecoder,
  checkPromptLength,
  generationConfig,
  nextTick,
  readPrompt,
  type DecoderLike,
  type FinishReason,
  type GenerationConfigInput,
  type GenerationPrompt,
  type GenerationRuntime,
} from './generate.js';
import { sampleNextToken } from './sampling.js';
import { StopStringMatcher, TextDeltaDecoder } from './text-deltas.js';
import type { Qwen2Tokenizer } from './tokenizer.js';

export interface BatchGenerationRuntime extends Partial<GenerationRuntime> {
  /** Decodes each row to text (and enables stop strings); EOS defaults to its `eosTokenId`. */
  tokenizer?: Pick<Qwen2Tokenizer, 'decode' | 'eosTokenId'>;
}

export interface BatchGenerationResult {
  tokens: number[];
  /** Present when a tokenizer was given: what {@link generateText} returns for this prompt. */
  text?: string;
  finishReason: FinishReason;
}

/** One row's progress. */
interface Row {
  readonly promptLength: number;
  readonly rng: Rng;
  readonly seen: number[];
  readonly tokens: number[];
  readonly text?: { decoder: TextDeltaDecoder; matcher: StopStringMatcher; value: string };
  finishReason?: FinishReason;
}

/**
 * Generates a continuation for every prompt (each `[1, L_b, D]`) at once; results in prompt order. Throws
 * PromptTooLongError for any over-long prompt before computing anything, and AbortedError when `signal` fires.
 */
export async function generateBatch(
  model: DecoderLike,
  prompts: readonly GenerationPrompt[],
  options: GenerationConfigInput,
  runtime: BatchGenerationRuntime = {},
): Promise<BatchGenerationResult[]> {
  const config = generationConfig.parse(options);
  const { tokenizer, signal } = runtime;
  if (config.stopStrings.length && !tokenizer) throw new InvalidArgumentError('runtime.tokenizer', 'stop strings need a tokenizer to decode the output');
  if (prompts.length === 0) return [];
  const decoder = asCausalDecoder(model);
  const read = await Promise.all(prompts.map((p) => readPrompt(decoder, p)));
  const limit = Math.min(...read.map((r) => checkPromptLength(decoder, r.length, config.maxContext)));
  const eos = new Set(runtime.eosTokenIds ?? (tokenizer ? [tokenizer.eosTokenId] : []));
  const rows: Row[] = read.map((r, i) => ({
    promptLength: r.length,
    rng: Rng.fromSeed(config.seed).fork('sampling'),
    seen: [...(prompts[i]!.promptIds ?? [])].filter((id) => id >= 0),
    tokens: [],
    text: tokenizer && { decoder: new TextDeltaDecoder(tokenizer), matcher: new StopStringMatcher(config.stopStrings), value: '' },
  }));
  const abortIfNeeded = () => {
    if (signal?.aborted) throw new AbortedError('generation', { cause: signal.reason });
  };
  abortIfNeeded();

  // Left padding with zero embeddings; the mask keeps them out of attention and out of the positions.
  const d = decoder.hiddenSize;
  const width = Math.max(...read.map((r) => r.length));
  const embeds = new Float32Array(rows.length * width * d);
  read.forEach((r, b) => embeds.set(r.values, (b * width + width - r.length) * d));
  const mask = read.map((r) => Array.from({ length: width }, (_, j) => (j >= width - r.length ? 1 : 0)));

  let { logits, cache } = await decoder.prefill({ inputsEmbeds: embeds, batch: rows.length, length: width, attentionMask: mask });
  /** Which prompt each batch row holds. */
  let active = rows.map((_, i) => i);
  try {
    for (let step = 0; ; step++) {
      const next: number[] = [];
      active.forEach((index, b) => {
        const token = advance(rows[index]!, logits.slice(b * decoder.vocabSize, (b + 1) * decoder.vocabSize), step);
        if (token !== undefined) next.push(token);
      });
      const stillActive = active.filter((index) => rows[index]!.finishReason === undefined);
      if (stillActive.length === 0) break;
      if (stillActive.length < active.length) cache = decoder.select(cache, stillActive.map((index) => active.indexOf(index)));
      active = stillActive;
      await nextTick();
      abortIfNeeded();
      ({ logits, cache } = await decoder.step(cache, next));
    }
  } finally {
    decoder.disposeCache(cache);
  }
  return rows.map((row) => ({ tokens: row.tokens, ...(row.text && { text: row.text.value }), finishReason: row.finishReason! }));

  /**
   * Picks a row's next token and applies the stopping rules in the order `streamText` over `generateTokens` does:
   * EOS (not emitted), stop string, `maxNewTokens`, context. Returns the token to feed, or nothing when it finished.
   */
  function advance(row: Row, logitsRow: Float32Array, step: number): number | undefined {
    const token = sampleNextToken(logitsRow, row.seen, config, row.rng);
    if (eos.has(token)) return finish(row, 'eos');
    row.seen.push(token);
    row.tokens.push(token);
    if (row.text) {
      row.text.value += row.text.matcher.push(row.text.decoder.push(token));
      if (row.text.matcher.done) {
        row.finishReason = 'stop';
        return undefined;
      }
    }
    if (step + 1 >= config.maxNewTokens) return finish(row, 'length');
    // Feeding this token takes position promptLength + step, which must be below the limit.
    if (row.promptLength + step + 1 > limit) return finish(row, 'context');
    return token;
  }

  function finish(row: Row, reason: FinishReason): undefined {
    row.finishReason = reason;
    if (row.text) row.text.value += row.text.matcher.push(row.text.decoder.flush()) + row.text.matcher.flush();
    return undefined;
  }
}
