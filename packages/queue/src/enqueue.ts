/**
 * Building a run's flow (see `job-types.ts`) and adding it in one atomic call (BullMQ's FlowProducer), with the
 * run's progress record. Children that fail after their attempts are ignored by their parent rather than blocking
 * it, so one corrupt video cannot stall a run: the report lists it with its code.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { readEvalSplit, type EvaluateOptions, type ModuleRuntime } from '@bvllm/pipeline';
import type { GenerationConfigInput } from '@bvllm/llm-bridge';
import type { SamplingInput } from '@bvllm/vision-encoder';
import { FlowProducer, type FlowJob, type JobsOptions } from 'bullmq';
import type { QueueConnection } from './connection.js';
import { QUEUE_NAMES, type EvalJobData, type ExtractJobData, type ReportJobData } from './job-types.js';
import { modelHash } from './model-hash.js';
import { RUN_TTL_S, createRun } from './run-state.js';

/** What every run names: the model and the shared feature cache. */
export interface RunOptions {
  /** A model folder all workers see at this path (or pass to their `modelDir`). */
  modelDir: string;
  /** The feature cache folder all workers share. */
  cacheDir: string;
  runtime?: ModuleRuntime;
  /** Overrides of the model's inference sampling. */
  sampling?: SamplingInput;
  /** Attempts per job for errors other than typed ones (a lost connection, a crash). Default 3. */
  attempts?: number;
}

export interface EvalRunOptions extends RunOptions {
  /** A VideoLLaMA2-format split; media paths relative to `folder` (default: its folder). */
  annotationsPath: string;
  folder?: string;
  limit?: number;
  seed?: number;
  /** Questions answered together within a video's job. Default 8. */
  batchSize?: number;
  generation?: GenerationConfigInput;
  benchmark?: EvaluateOptions['benchmark'];
}

export interface ExtractRunOptions extends RunOptions {
  /** Video files, in the order the result lists them. */
  videos: readonly string[];
}

function childOptions(jobId: string, attempts = 3): JobsOptions {
  return {
    jobId,
    attempts,
    backoff: { type: 'fixed', delay: 1000 },
    ignoreDependencyOnFailure: true,
    removeOnComplete: { age: RUN_TTL_S },
    removeOnFail: { age: RUN_TTL_S },
  };
}

async function addRun(connection: QueueConnection, runId: string, kind: 'eval' | 'extract', total: number, report: ReportJobData, children: FlowJob[]): Promise<string> {
  const reportJobId = `${runId}-report`;
  await createRun(connection, runId, { kind, total, createdAt: Date.now(), reportJobId });
  const producer = new FlowProducer({ connection: connection.bullmq, prefix: connection.prefix });
  producer.on('error', () => undefined); // reconnects are retried; `add` below waits for them or fails
  try {
    await producer.add({
      name: 'report',
      queueName: QUEUE_NAMES.report,
      data: report,
      opts: { jobId: reportJobId, attempts: 3, backoff: { type: 'fixed', delay: 1000 }, removeOnComplete: { age: RUN_TTL_S }, removeOnFail: { age: RUN_TTL_S } },
      children,
    });
  } finally {
    await producer.close();
  }
  return runId;
}

async function modelFields(options: RunOptions) {
  const modelDir = resolve(options.modelDir);
  return { modelDir, modelHash: await modelHash(modelDir), ...(options.runtime && { runtime: options.runtime }) };
}

/** Enqueues one extract job per video; resolves to the run id. */
export async function enqueueExtract(connection: QueueConnection, options: ExtractRunOptions): Promise<string> {
  const runId = randomUUID();
  const model = await modelFields(options);
  const videos = options.videos.map((v) => resolve(v));
  const children = videos.map((video, i): FlowJob => {
    const data: ExtractJobData = { runId, items: [video], ...model, video, cacheDir: resolve(options.cacheDir), ...(options.sampling && { sampling: options.sampling }) };
    return { name: 'extract', queueName: QUEUE_NAMES.extract, data, opts: childOptions(`${runId}-x${i}`, options.attempts) };
  });
  return addRun(connection, runId, 'extract', videos.length, { runId, items: [], kind: 'extract', videos }, children);
}

/** Enqueues one eval job per video of the split, each after its video's extract job; resolves to the run id. */
export async function enqueueEval(connection: QueueConnection, options: EvalRunOptions): Promise<string> {
  const runId = randomUUID();
  const model = await modelFields(options);
  const folder = resolve(options.folder ?? resolve(options.annotationsPath, '..'));
  const split = readEvalSplit(options.annotationsPath, options.limit);
  const cacheDir = resolve(options.cacheDir);
  const children = split.map(({ video, questions }, index): FlowJob => {
    const path = resolve(folder, video);
    const extract: ExtractJobData = { runId, items: [], ...model, video: path, cacheDir, ...(options.sampling && { sampling: options.sampling }) };
    const data: EvalJobData = {
      ...extract,
      items: questions.map((q) => q.id),
      index,
      questions,
      seed: options.seed ?? 0,
      batchSize: options.batchSize ?? 8,
      // `{}` and no overrides are one answer key.
      ...(options.generation && Object.keys(options.generation).length > 0 && { generation: options.generation }),
    };
    return {
      name: 'eval',
      queueName: QUEUE_NAMES.eval,
      data,
      opts: childOptions(`${runId}-e${index}`, options.attempts),
      children: [{ name: 'extract', queueName: QUEUE_NAMES.extract, data: extract, opts: childOptions(`${runId}-x${index}`, options.attempts) }],
    };
  });
  const total = split.reduce((n, v) => n + v.questions.length, 0);
  return addRun(connection, runId, 'eval', total, { runId, items: [], kind: 'eval', split, ...(options.benchmark && { benchmark: options.benchmark }) }, children);
}
