/**
 * The three queues and what their jobs carry. An eval run is one flow per split:
 *
 *   report (gathers the scores) ◄── eval (one per video: its questions) ◄── extract (that video's features)
 *
 * and an extract run is `report ◄── extract` per video. Every path in a job is absolute and must name the same
 * file on every worker (a shared filesystem mounted at one path).
 */
import type { EvalAnswer, EvalQuestion, EvaluateOptions, EvaluateResult, ModuleRuntime } from '@bvllm/pipeline';
import type { GenerationConfigInput } from '@bvllm/llm-bridge';
import type { SamplingInput } from '@bvllm/vision-encoder';
import type { JobFailure } from './job-failure.js';

/** Queue names; the Redis key prefix (default `bvllm`) separates deployments sharing one Redis. */
export const QUEUE_NAMES = { extract: 'extract', eval: 'eval', report: 'report' } as const;

/** What every job needs to find its model and its run. */
export interface JobBase {
  runId: string;
  /** Ids of what this job completes toward its run's total (question ids, or a video path); none for helpers. */
  items: string[];
  /** The model folder, as a path all workers see (a worker's `modelDir` option overrides it). */
  modelDir: string;
  /** `modelHash(modelDir)` when enqueued: results are keyed by it, and a worker with another model refuses the job. */
  modelHash: string;
  runtime?: ModuleRuntime;
}

export interface ExtractJobData extends JobBase {
  video: string;
  /** The shared feature cache folder. */
  cacheDir: string;
  sampling?: SamplingInput;
}

export interface ExtractJobResult {
  video: string;
  frames: number;
  /** True when the features were already in the cache (nothing encoded). */
  cached: boolean;
}

export interface EvalJobData extends ExtractJobData {
  /** The video's position in the split (`readEvalSplit` order), so the report keeps evaluateSplit's order. */
  index: number;
  questions: EvalQuestion[];
  seed: number;
  batchSize: number;
  generation?: GenerationConfigInput;
}

export interface EvalJobResult {
  index: number;
  extract: ExtractJobResult;
  /** One per question, in order. */
  answers: EvalAnswer[];
  /** Answers taken from the answer store (already computed by an earlier run). */
  reused: number;
}

export interface ReportJobData {
  runId: string;
  items: string[];
  kind: 'eval' | 'extract';
  /** Eval: the split's videos (as the split names them) with their questions, in `readEvalSplit` order. */
  split?: { video: string; questions: EvalQuestion[] }[];
  /** Extract: the videos, in order. */
  videos?: string[];
  benchmark?: EvaluateOptions['benchmark'];
}

/** A video, or a video's questions, that has no result, with the typed failure. */
export interface RunFailure extends JobFailure {
  video: string;
  /** Question ids left unanswered (eval runs). */
  questions?: string[];
}

/** What a run's report job returns. */
export interface RunResult {
  kind: 'eval' | 'extract';
  /** Eval: the report of every answered question, as `evaluateSplit` returns it (equal to it when nothing failed). */
  eval?: EvaluateResult;
  /** Extract: one record per video that was encoded or found in the cache, in order. */
  videos?: ExtractJobResult[];
  failures: RunFailure[];
  /** Work done against work skipped: videos encoded, videos found cached, questions answered, answers reused. */
  stats: { encoded: number; cached: number; answered: number; reused: number };
}
