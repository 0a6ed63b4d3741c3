/**
 * Benchmark scoring (spec §4): MCQA accuracy overall and per task with unparsed answers counted apart, open-ended QA
 * through a pluggable judge, and the report as JSON and as a Markdown table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractMcqaAnswer, type McqaBenchmark, type ExtractionVia } from './mcqa.js';

export interface Score {
  total: number;
  correct: number;
  /** correct / total, in [0, 1]. */
  accuracy: number;
  /** Answers no rule could read; they still count with the official fallback prediction (index 2). */
  unparsed?: number;
  /** Mean judge score (Video-ChatGPT protocol: 0–5), when the judge gives one. */
  meanScore?: number;
}

export interface EvalReport {
  benchmark: string;
  kind: 'mcqa' | 'open-qa';
  /** The judge's name for open-ended QA. */
  judge?: string;
  overall: Score;
  /** Keyed by task (MVBench task, Video-MME duration, …); sorted by name. */
  perTask: Record<string, Score>;
}

export interface McqaItem {
  id: string;
  /** Task or split the item belongs to; items without one go under `all`. */
  task?: string;
  options: readonly string[];
  /** Index of the correct option. */
  answerIndex: number;
  /** The model's raw output. */
  output: string;
}

export interface McqaPrediction {
  id: string;
  task: string;
  predictedIndex: number;
  answerIndex: number;
  via: ExtractionVia;
  correct: boolean;
}

class Tally {
  total = 0;
  correct = 0;
  unparsed = 0;
  scores: number[] = [];

  add(correct: boolean, unparsed = false, score?: number): void {
    this.total += 1;
    if (correct) this.correct += 1;
    if (unparsed) this.unparsed += 1;
    if (score !== undefined) this.scores.push(score);
  }

  score(kind: EvalReport['kind']): Score {
    const s: Score = { total: this.total, correct: this.correct, accuracy: this.total ? this.correct / this.total : 0 };
    if (kind === 'mcqa') s.unparsed = this.unparsed;
    if (this.scores.length) s.meanScore = this.scores.reduce((a, b) => a + b, 0) / this.scores.length;
    return s;
  }
}

function report(benchmark: string, kind: EvalReport['kind'], overall: Tally, perTask: Map<string, Tally>, judge?: string): EvalReport {
  return {
    benchmark,
    kind,
    ...(judge ? { judge } : {}),
    overall: overall.score(kind),
    perTask: Object.fromEntries([...perTask].sort(([a], [b]) => a.localeCompare(b)).map(([t, tally]) => [t, tally.score(kind)])),
  };
}

/** Extracts every answer with the benchmark's official rule and scores it; the mean over items, as the scripts. */
export function scoreMcqa(benchmark: McqaBenchmark, items: readonly McqaItem[]): { report: EvalReport; predictions: McqaPrediction[] } {
  const overall = new Tally();
  const perTask = new Map<string, Tally>();
  const predictions = items.map((item) => {
    const task = item.task ?? 'all';
    const { index, via } = extractMcqaAnswer(benchmark, item.output, item.options);
    const correct = index === item.answerIndex;
    overall.add(correct, via === 'unparsed');
    if (!perTask.has(task)) perTask.set(task, new Tally());
    perTask.get(task)!.add(correct, via === 'unparsed');
    return { id: item.id, task, predictedIndex: index, answerIndex: item.answerIndex, via, correct };
  });
  return { report: report(benchmark, 'mcqa', overall, perTask), predictions };
}

export interface OpenQaItem {
  id: string;
  task?: string;
  question: string;
  /** The reference answer. */
  answer: string;
  prediction: string;
}

export interface JudgeVerdict {
  correct: boolean;
  /** Optional graded score (GPT judge of the Video-ChatGPT protocol: 0–5). */
  score?: number;
}

/** Decides whether a prediction answers the question; a GPT-style judge implements this over HTTP. */
export interface AnswerJudge {
  readonly name: string;
  judge(item: OpenQaItem): JudgeVerdict | Promise<JudgeVerdict>;
}

/** SQuAD-style normalisation: lower case, punctuation and the articles a/an/the removed, whitespace collapsed. */
export function normalizeAnswer(text: string): string {
  return text
    .toLowerCase()
    .replace(/[\p{P}\p{S}]/gu, ' ')
    .replace(/\b(a|an|the)\b/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The local stand-in for the GPT-3.5 judge (spec §4.1): normalised exact match. */
export const exactMatchJudge: AnswerJudge = {
  name: 'normalized-exact-match',
  judge: (item) => ({ correct: normalizeAnswer(item.prediction) === normalizeAnswer(item.answer) }),
};

/** Accuracy = yes / (yes + no) over judged items, overall and per task, plus the mean score when judged. */
export async function scoreOpenQa(benchmark: string, items: readonly OpenQaItem[], judge: AnswerJudge = exactMatchJudge): Promise<EvalReport> {
  const overall = new Tally();
  const perTask = new Map<string, Tally>();
  for (const item of items) {
    const verdict = await judge.judge(item);
    const task = item.task ?? 'all';
    overall.add(verdict.correct, false, verdict.score);
    if (!perTask.has(task)) perTask.set(task, new Tally());
    perTask.get(task)!.add(verdict.correct, false, verdict.score);
  }
  return report(benchmark, 'open-qa', overall, perTask, judge.name);
}

const pct = (x: number) => `${(100 * x).toFixed(1)}`;

/** One row per task, then the overall row; accuracy in percent with one decimal, as papers report it. */
export function reportMarkdown(r: EvalReport): string {
  const withUnparsed = r.kind === 'mcqa';
  const withScore = r.overall.meanScore !== undefined;
  const head = ['task', 'n', 'accuracy (%)', ...(withUnparsed ? ['unparsed'] : []), ...(withScore ? ['mean score'] : [])];
  const row = (name: string, s: Score) => [
    name,
    String(s.total),
    pct(s.accuracy),
    ...(withUnparsed ? [String(s.unparsed ?? 0)] : []),
    ...(withScore ? [s.meanScore !== undefined ? s.meanScore.toFixed(2) : '–'] : []),
  ];
  const rows = [...Object.entries(r.perTask).map(([t, s]) => row(t, s)), row('**overall**', r.overall)];
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    `## ${r.benchmark}${r.judge ? ` (judge: ${r.judge})` : ''}`,
    '',
    line(head),
    line(head.map((_, i) => (i === 0 ? '---' : '---:'))),
    ...rows.map(line),
    '',
  ].join('\n');
}

/** Writes `<benchmark>.json` and `<benchmark>.md` under `dir`; returns both paths. */
export function writeEvalReport(dir: string, r: EvalReport, predictions?: readonly unknown[]): { json: string; markdown: string } {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `${r.benchmark}.json`);
  const markdown = join(dir, `${r.benchmark}.md`);
  writeFileSync(json, `${JSON.stringify(predictions ? { ...r, predictions } : r, null, 2)}\n`);
  writeFileSync(markdown, reportMarkdown(r));
  return { json, markdown };
}
