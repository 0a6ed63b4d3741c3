/**
 * Evaluates a model on a VideoLLaMA2-format split with the official protocol (spec §4.1): greedy answers at 1 fps;
 * MCQA items (those with `options`) scored by the official letter extraction, open items by normalised exact match
 * (the local stand-in for the GPT judge). Features are computed once per video, however many questions it has.
 * Answers are generated `batchSize` questions at a time (`generateBatch`), which equals answering one by one.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { scoreMcqa, scoreOpenQa, type EvalReport, type McqaBenchmark, type McqaItem, type McqaPrediction, type OpenQaItem } from '@bvllm/trainer';
import { generateBatch, type FinishReason, type GenerationConfigInput, type GenerationPrompt } from '@bvllm/llm-bridge';
import type { SamplingInput } from '@bvllm/vision-encoder';
import type { InferenceSession } from './inference-session.js';

interface EvalEntry {
  id: string;
  video: string;
  task?: string;
  options?: string[];
  answer?: string;
  conversations: { from: string; value: string }[];
}

export interface EvaluateOptions {
  /** Official extraction rules to use for MCQA (spec §4.1). Default `perception-test` (letter only). */
  benchmark?: McqaBenchmark;
  /** Only the first `limit` entries. */
  limit?: number;
  /** Gumbel seed (D4). */
  seed?: number;
  /** Questions answered together (left-padded batch); 1 answers one at a time. Default 8. */
  batchSize?: number;
  /** Overrides of the model's inference sampling for every video (`{ mode: 'uniform', numFrames }`, a rate). */
  sampling?: SamplingInput;
  /** Overrides of the model's generation defaults (maxNewTokens, temperature, …); greedy by default (spec §4.1). */
  generation?: GenerationConfigInput;
  onItem?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface EvaluateResult {
  mcqa?: { report: EvalReport; predictions: McqaPrediction[] };
  open?: EvalReport;
  /** Every answer; `finishReason` is `length` where it stopped at the token limit. */
  answers: { id: string; task?: string; output: string; reference: string; finishReason: FinishReason }[];
}

/**
 * Answers every entry of `annotationsPath` (media relative to its folder unless `folder` is given) with `session`
 * and scores them.
 */
export async function evaluateSplit(session: InferenceSession, annotationsPath: string, options: EvaluateOptions & { folder?: string } = {}): Promise<EvaluateResult> {
  const folder = options.folder ?? dirname(annotationsPath);
  const entries = (JSON.parse(readFileSync(annotationsPath, 'utf8')) as EvalEntry[]).slice(0, options.limit);
  const byVideo = new Map<string, EvalEntry[]>();
  for (const e of entries) byVideo.set(e.video, [...(byVideo.get(e.video) ?? []), e]);
  const mcqa: McqaItem[] = [];
  const open: OpenQaItem[] = [];
  const answers: EvaluateResult['answers'] = [];
  const generation = session.generation({ seed: options.seed, generation: options.generation });
  const batchSize = options.batchSize ?? 8;
  let pending: { item: EvalEntry; question: string; reference: string; prompt: GenerationPrompt }[] = [];
  let done = 0;
  const flush = async () => {
    const results = await generateBatch(session.decoder, pending.map((p) => p.prompt), generation, { tokenizer: session.assets.tokenizer, signal: options.signal });
    pending.forEach(({ item, question, reference }, i) => {
      const text = results[i]!.text!;
      answers.push({ id: item.id, task: item.task, output: text, reference, finishReason: results[i]!.finishReason });
      if (item.options) mcqa.push({ id: item.id, task: item.task, options: item.options, answerIndex: reference.charCodeAt(0) - 65, output: text });
      else open.push({ id: item.id, task: item.task, question, answer: reference, prediction: text });
      options.onItem?.(++done, entries.length);
    });
    pending = [];
  };
  for (const [video, items] of byVideo) {
    const encoded = await session.encode(join(folder, video), { signal: options.signal, sampling: options.sampling });
    try {
      for (const item of items) {
        const human = item.conversations.find((c) => c.from === 'human')?.value ?? '';
        const reference = item.conversations.find((c) => c.from === 'gpt')?.value ?? item.answer ?? '';
        const question = human.replace(/<video>\n?/, '');
        const { prompt } = await session.prompt(encoded, [{ role: 'user', content: question }], options.seed ?? 0);
        pending.push({ item, question, reference, prompt });
        if (pending.length >= batchSize) await flush();
      }
    } finally {
      encoded.close();
    }
  }
  if (pending.length) await flush();
  return {
    mcqa: mcqa.length ? scoreMcqa(options.benchmark ?? 'perception-test', mcqa) : undefined,
    open: open.length ? await scoreOpenQa('open-qa', open) : undefined,
    answers,
  };
}

