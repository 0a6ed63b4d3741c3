/**
 * Evaluates a model on a VideoLLaMA2-format split with the official protocol (spec §4.1): greedy answers at 1 fps;
 * MCQA items (those with `options`) scored by the official letter extraction, open items by normalised exact match
 * (the local stand-in for the GPT judge). Features are computed once per video, however many questions it has.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FrameFeatures } from '@bvllm/core';
import { scoreMcqa, scoreOpenQa, type EvalReport, type McqaBenchmark, type McqaItem, type McqaPrediction, type OpenQaItem } from '@bvllm/trainer';
import { answer } from './answer.js';
import type { BvllmModel } from './bvllm-model.js';
import { disposeFeatures, videoFeatures } from './video-features.js';

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
  onItem?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface EvaluateResult {
  mcqa?: { report: EvalReport; predictions: McqaPrediction[] };
  open?: EvalReport;
  answers: { id: string; task?: string; output: string; reference: string }[];
}

/** Answers every entry of `annotationsPath` (media relative to its folder unless `folder` is given) and scores them. */
export async function evaluateSplit(model: BvllmModel, annotationsPath: string, options: EvaluateOptions & { folder?: string } = {}): Promise<EvaluateResult> {
  const folder = options.folder ?? dirname(annotationsPath);
  const entries = (JSON.parse(readFileSync(annotationsPath, 'utf8')) as EvalEntry[]).slice(0, options.limit);
  const byVideo = new Map<string, EvalEntry[]>();
  for (const e of entries) byVideo.set(e.video, [...(byVideo.get(e.video) ?? []), e]);
  const mcqa: McqaItem[] = [];
  const open: OpenQaItem[] = [];
  const answers: EvaluateResult['answers'] = [];
  let done = 0;
  for (const [video, items] of byVideo) {
    const features: FrameFeatures = await videoFeatures(model, join(folder, video), { signal: options.signal });
    try {
      for (const item of items) {
        const human = item.conversations.find((c) => c.from === 'human')?.value ?? '';
        const reference = item.conversations.find((c) => c.from === 'gpt')?.value ?? item.answer ?? '';
        const question = human.replace(/<video>\n?/, '');
        const { text } = await answer(model, features, [{ role: 'user', content: question }], { seed: options.seed, signal: options.signal });
        answers.push({ id: item.id, task: item.task, output: text, reference });
        if (item.options) mcqa.push({ id: item.id, task: item.task, options: item.options, answerIndex: reference.charCodeAt(0) - 65, output: text });
        else open.push({ id: item.id, task: item.task, question, answer: reference, prediction: text });
        options.onItem?.(++done, entries.length);
      }
    } finally {
      disposeFeatures(features);
    }
  }
  return {
    mcqa: mcqa.length ? scoreMcqa(options.benchmark ?? 'perception-test', mcqa) : undefined,
    open: open.length ? await scoreOpenQa('open-qa', open) : undefined,
    answers,
  };
}

