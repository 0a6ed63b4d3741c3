/**
 * Evaluates a model on a VideoLLaMA2-format split with the official protocol (spec §4.1): greedy answers at 1 fps;
 * MCQA items (those with `options`) scored by the official letter extraction, open items by normalised exact match
 * (the local stand-in for the GPT judge). Features are computed once per video, however many questions it has.
 * Answers are generated `batchSize` questions at a time (`generateBatch`), which equals answering one by one.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InvalidArgumentError } from '@bvllm/core';
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

/** One question of a split, as eval asks and scores it. */
export interface EvalQuestion {
  id: string;
  task?: string;
  /** MCQA options (`(A) …`); absent for an open question. */
  options?: string[];
  /** The human turn without `<video>`. */
  question: string;
  /** The gpt turn (a letter for MCQA), else the entry's `answer`. */
  reference: string;
}

/** A split's questions grouped by video (media path as the split writes it), in order of first appearance. */
export interface EvalVideo {
  video: string;
  questions: EvalQuestion[];
}

/**
 * Reads the first `limit` entries of a VideoLLaMA2-format split, grouped by video: the order `evaluateSplit` answers
 * and reports them in, so a distributed run that follows it reports the same (`@bvllm/queue`).
 */
export function readEvalSplit(annotationsPath: string, limit?: number): EvalVideo[] {
  const entries = readEntries(annotationsPath).slice(0, limit);
  const byVideo = new Map<string, EvalQuestion[]>();
  for (const e of entries) {
    const human = e.conversations.find((c) => c.from === 'human')?.value ?? '';
    const reference = e.conversations.find((c) => c.from === 'gpt')?.value ?? e.answer ?? '';
    const question: EvalQuestion = { id: e.id, task: e.task, ...(e.options && { options: e.options }), question: human.replace(/<video>\n?/, ''), reference };
    byVideo.set(e.video, [...(byVideo.get(e.video) ?? []), question]);
  }
  return [...byVideo].map(([video, questions]) => ({ video, questions }));
}

/** The split's entries; an unreadable file, one that is not JSON, or an entry without its fields is INVALID_ARGUMENT. */
function readEntries(path: string): EvalEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InvalidArgumentError('annotations', `${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a folder, not a JSON file' : `cannot be read (${code ?? String(error)})`}`);
  }
  let entries: unknown;
  try {
    entries = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError('annotations', `${path}: not JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(entries)) throw new InvalidArgumentError('annotations', `${path}: expected a JSON array of entries`);
  entries.forEach((e: Partial<EvalEntry> | null, i) => {
    if (!e || typeof e.id !== 'string' || typeof e.video !== 'string' || !Array.isArray(e.conversations))
      throw new InvalidArgumentError('annotations', `${path}: entry ${i} needs "id", "video" and "conversations" (the VideoLLaMA2 format)`);
  });
  return entries as EvalEntry[];
}

/** A model's answer to one question. */
export interface EvalAnswer {
  output: string;
  finishReason: FinishReason;
}

/** Scores answers given in `readEvalSplit` order: MCQA by the benchmark's official extraction, open by exact match. */
export async function scoreEvalAnswers(answered: readonly { question: EvalQuestion; answer: EvalAnswer }[], benchmark: McqaBenchmark = 'perception-test'): Promise<EvaluateResult> {
  const mcqa: McqaItem[] = [];
  const open: OpenQaItem[] = [];
  const answers: EvaluateResult['answers'] = [];
  for (const { question: q, answer } of answered) {
    answers.push({ id: q.id, task: q.task, output: answer.output, reference: q.reference, finishReason: answer.finishReason });
    if (q.options) mcqa.push({ id: q.id, task: q.task, options: q.options, answerIndex: q.reference.charCodeAt(0) - 65, output: answer.output });
    else open.push({ id: q.id, task: q.task, question: q.question, answer: q.reference, prediction: answer.output });
  }
  return {
    mcqa: mcqa.length ? scoreMcqa(benchmark, mcqa) : undefined,
    open: open.length ? await scoreOpenQa('open-qa', open) : undefined,
    answers,
  };
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
  const videos = readEvalSplit(annotationsPath, options.limit);
  const total = videos.reduce((n, v) => n + v.questions.length, 0);
  const answered: { question: EvalQuestion; answer: EvalAnswer }[] = [];
  const generation = session.generation({ seed: options.seed, generation: options.generation });
  const batchSize = options.batchSize ?? 8;
  let pending: { question: EvalQuestion; prompt: GenerationPrompt }[] = [];
  const flush = async () => {
    const results = await generateBatch(session.decoder, pending.map((p) => p.prompt), generation, { tokenizer: session.assets.tokenizer, signal: options.signal });
    pending.forEach(({ question }, i) => {
      answered.push({ question, answer: { output: results[i]!.text!, finishReason: results[i]!.finishReason } });
      options.onItem?.(answered.length, total);
    });
    pending = [];
  };
  for (const { video, questions } of videos) {
    const encoded = await session.encode(join(folder, video), { signal: options.signal, sampling: options.sampling });
    try {
      for (const question of questions) {
        const { prompt } = await session.prompt(encoded, [{ role: 'user', content: question.question }], options.seed ?? 0);
        pending.push({ question, prompt });
        if (pending.length >= batchSize) await flush();
      }
    } finally {
      encoded.close();
    }
  }
  if (pending.length) await flush();
  return scoreEvalAnswers(answered, options.benchmark);
}
