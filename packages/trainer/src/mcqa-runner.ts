/** Runs an MCQA benchmark through any answering function (the pipeline's `generate`) and scores it (spec §4.1). */
import { AbortedError } from '@bvllm/core';
import { scoreMcqa, type EvalReport, type McqaPrediction } from './eval-report.js';
import { mcqaPrompt, type McqaBenchmark } from './mcqa.js';

export interface McqaBenchmarkItem {
  id: string;
  /** Task (MVBench) or duration (Video-MME) the item is reported under. */
  task?: string;
  /** The video, as the answering function understands it (a path, usually). */
  video: string;
  question: string;
  options: string[];
  answerIndex: number;
}

/** Answers one item given the benchmark's instruction; the caller puts it after `<video>\n` in the user turn. */
export type McqaAnswerFn = (item: McqaBenchmarkItem, instruction: string) => Promise<string>;

export interface McqaRunResult {
  report: EvalReport;
  predictions: (McqaPrediction & { output: string })[];
}

export async function runMcqa(
  benchmark: McqaBenchmark,
  items: readonly McqaBenchmarkItem[],
  answer: McqaAnswerFn,
  options: { signal?: AbortSignal; onItem?: (done: number, total: number) => void } = {},
): Promise<McqaRunResult> {
  const outputs: string[] = [];
  for (const item of items) {
    if (options.signal?.aborted) throw new AbortedError(`${benchmark} evaluation`, { cause: options.signal.reason });
    outputs.push(await answer(item, mcqaPrompt(benchmark, item)));
    options.onItem?.(outputs.length, items.length);
  }
  const { report, predictions } = scoreMcqa(
    benchmark,
    items.map((item, i) => ({ id: item.id, task: item.task, options: item.options, answerIndex: item.answerIndex, output: outputs[i] })),
  );
  return { report, predictions: predictions.map((p, i) => ({ ...p, output: outputs[i] })) };
}
