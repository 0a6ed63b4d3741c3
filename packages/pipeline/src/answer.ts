/**
 * Answering questions about a video (spec §3): the visual path runs once per question (selection is
 * text-conditioned, so a follow-up re-selects frames, spec §1.2), the visual embeddings are spliced at `<video>`
 * in the chat prompt, and Qwen2 streams the answer. Frame features are computed once per video and reused.
 */
import { Rng, tf, type FrameFeatures } from '@bvllm/core';
import { spliceVisual, streamText, tokenizeMultimodal, type FinishReason, type GenerationConfigInput, type GenerationPrompt } from '@bvllm/llm-bridge';
import { disposeVisualPath, type BvllmModel } from './bvllm-model.js';
import { inferenceDecoder } from './llm-runtime.js';
import { inferenceVisualPath } from './visual-runtime.js';

/** A turn of a conversation about one video. */
export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
}

/** What the visual path chose, for logs, `--json` and the frame strip. */
export interface SelectionSummary {
  /** Kept frames in the order the LLM sees them. */
  frames: { frameIndex: number; timestampSec: number; weight: number; mergedQueries: number[] }[];
  /** Each query's weights over the T frames. [K][T] */
  frameWeights: number[][];
  visualTokens: number;
  promptTokens: number;
}

export interface AskOptions {
  /** Seeds the Gumbel noise of frame selection (D4) and sampling. Default 0. */
  seed?: number;
  /** Overrides of the model's generation defaults (maxNewTokens, temperature, topP, …). */
  generation?: GenerationConfigInput;
  signal?: AbortSignal;
}

export interface AskResult {
  finishReason: FinishReason;
  selection: SelectionSummary;
}

/** A question turned into what the decoder continues, with what the visual path chose. */
export interface AnswerPrompt {
  /** The chat prompt's embeddings `[1, L, D]` with the visual embeddings spliced at `<video>`. */
  prompt: GenerationPrompt;
  selection: SelectionSummary;
}

/**
 * Runs the visual path for the last user turn and splices its embeddings into the chat prompt. Frees every
 * tensor it made: the prompt comes back as plain values, ready for either runtime.
 */
export async function answerPrompt(model: BvllmModel, features: FrameFeatures, turns: readonly ChatTurn[], seed = 0): Promise<AnswerPrompt> {
  const question = turns[turns.length - 1];
  if (!question || question.role !== 'user') throw new Error('the last turn must be a user question');
  const tokens = model.tokenizeQuestion(question.content);
  const ids = tokenizeMultimodal(model.assets.tokenizer, model.template.render(model.messagesFor(turns), { addGenerationPrompt: true }));
  const context = { training: false, rng: Rng.fromSeed(seed).fork('frame-select') };
  const path = await inferenceVisualPath(model, features, tokens, context);
  try {
    const weights = (await path.selection.frameWeights.array()) as number[][];
    const spliced = spliceVisual(model.llm, { inputIds: [ids], visual: [[path.visualEmbeds]] });
    // Generation needs only the embeddings (batch 1: no padding, no labels).
    tf.dispose([spliced.attentionMask, spliced.labels]);
    const inputsEmbeds = (await spliced.inputsEmbeds.data()) as Float32Array;
    const promptTokens = spliced.inputsEmbeds.shape[1]!;
    spliced.inputsEmbeds.dispose();
    const selection: SelectionSummary = {
      frames: path.merged.groups.map((group, i) => ({
        frameIndex: path.merged.frameIndices[i],
        timestampSec: path.merged.timestampsSec[i],
        weight: Math.max(...group.map((q) => weights[q][path.merged.frameIndices[i]])),
        mergedQueries: [...group],
      })),
      frameWeights: weights,
      visualTokens: path.visualEmbeds.shape[0],
      promptTokens,
    };
    return { prompt: { inputsEmbeds, promptIds: ids }, selection };
  } finally {
    disposeVisualPath(path);
    tf.dispose([tokens.inputIds, tokens.attentionMask]);
  }
}

/** The model's generation defaults under the caller's overrides, with the answer's seed. */
export function answerGeneration(model: BvllmModel, options: AskOptions): GenerationConfigInput {
  return { ...model.config.generation, ...options.generation, seed: options.seed ?? 0 };
}

/**
 * Streams the assistant's next turn after `turns` (the last one a user question) as text deltas, on the decoder
 * of the model's `runtime.llm`.
 */
export async function* streamAnswer(model: BvllmModel, features: FrameFeatures, turns: readonly ChatTurn[], options: AskOptions = {}): AsyncGenerator<string, AskResult> {
  const { prompt, selection } = await answerPrompt(model, features, turns, options.seed ?? 0);
  const decoder = await inferenceDecoder(model);
  const stream = streamText(decoder, model.assets.tokenizer, prompt, answerGeneration(model, options), { signal: options.signal });
  for (;;) {
    const next = await stream.next();
    if (next.done) return { finishReason: next.value, selection };
    yield next.value;
  }
}

/** Runs {@link streamAnswer} to the end. */
export async function answer(model: BvllmModel, features: FrameFeatures, turns: readonly ChatTurn[], options: AskOptions = {}): Promise<AskResult & { text: string }> {
  let text = '';
  const stream = streamAnswer(model, features, turns, options);
  for (;;) {
    const next = await stream.next();
    if (next.done) return { ...next.value, text };
    text += next.value;
  }
}
