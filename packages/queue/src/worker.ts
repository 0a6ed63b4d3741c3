/**
 * A worker process's side: one BullMQ worker per queue, sharing a {@link SessionPool}. Stalled-job detection is
 * BullMQ's: a job's lock is renewed while it runs, and a job whose worker died (SIGKILL, a lost machine) is
 * found by another worker's stall check once the lock lapses, and runs again there.
 */
import { hostname } from 'node:os';
import { Worker, type Job } from 'bullmq';
import { closeQueueConnection, connectQueue, type ConnectOptions, type QueueConnection } from './connection.js';
import { jobError } from './job-failure.js';
import { QUEUE_NAMES, type EvalJobData, type EvalJobResult, type ExtractJobData, type ExtractJobResult, type JobBase, type ReportJobData, type RunResult } from './job-types.js';
import { processEval, processExtract, processReport } from './processors.js';
import { markJob } from './run-state.js';
import { SessionPool } from './session-pool.js';

export interface WorkerOptions extends ConnectOptions {
  /** Jobs run at once per queue (extract and eval). Default 1. */
  concurrency?: number;
  /**
   * A model folder to use for every job instead of the path in the job (its hash must match the job's). It is
   * opened before the worker takes jobs, so a broken folder fails `startWorker` and no job pays the open.
   */
  modelDir?: string;
  /**
   * onnxruntime intra-op threads per session. Default every core, right for one worker per machine; with W workers
   * on one machine give each cores / W (1 on a 2-core machine with two workers).
   */
  threads?: number;
  /**
   * A job's lock, renewed every half of it while the job runs; a dead worker's job is retried elsewhere about this
   * long after it died. Default 30000 ms (BullMQ's). The event loop must not block this long within a job.
   */
  lockDurationMs?: number;
  /** Each job as it ends: `done`, `failed` (for good) or `retry`, with the processor's own time in `ms`. */
  onJob?: (queue: string, job: Job, event: 'done' | 'failed' | 'retry', info: { ms: number; error?: Error }) => void;
}

/** A running worker; `close()` lets its current jobs finish, then closes the sessions. */
export interface QueueWorker {
  readonly connection: QueueConnection;
  close(): Promise<void>;
}

/** Connects to Redis (a typed `REDIS_UNAVAILABLE` error when it is down) and starts taking jobs. */
export async function startWorker(url: string, options: WorkerOptions = {}): Promise<QueueWorker> {
  const connection = await connectQueue(url, options);
  const sessions = new SessionPool(options.modelDir, options.threads);
  try {
    await sessions.preload();
  } catch (error) {
    await closeQueueConnection(connection);
    throw error;
  }
  const lockDuration = options.lockDurationMs ?? 30_000;
  const base = {
    connection: connection.bullmq,
    prefix: connection.prefix,
    // Each job's record names who ran it (`processedBy`): which machine, which process.
    name: `${hostname()}:${process.pid}`,
    lockDuration,
    stalledInterval: lockDuration,
    // A job may stall twice (two dead workers) before it fails as stalled.
    maxStalledCount: 2,
  };
  const tracked =
    <T extends Pick<JobBase, 'runId' | 'items'>, R>(queue: string, run: (job: Job<T>) => Promise<R>) =>
    async (job: Job<T>): Promise<R> => {
      const id = job.id!;
      await markJob(connection, job.data.runId, id, 'started', []);
      const t0 = performance.now();
      try {
        const result = await run(job);
        const ms = performance.now() - t0;
        await markJob(connection, job.data.runId, id, 'done', job.data.items);
        options.onJob?.(queue, job, 'done', { ms });
        return result;
      } catch (error) {
        const ms = performance.now() - t0;
        const thrown = jobError(error);
        const final = thrown.name === 'UnrecoverableError' || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        await markJob(connection, job.data.runId, id, final ? 'failed' : 'retry', job.data.items);
        options.onJob?.(queue, job, final ? 'failed' : 'retry', { ms, error: thrown });
        throw thrown;
      }
    };
  const concurrency = options.concurrency ?? 1;
  const workers = [
    new Worker(QUEUE_NAMES.extract, tracked<ExtractJobData, ExtractJobResult>(QUEUE_NAMES.extract, (job) => processExtract(job, sessions)), { ...base, concurrency }),
    new Worker(QUEUE_NAMES.eval, tracked<EvalJobData, EvalJobResult>(QUEUE_NAMES.eval, (job) => processEval(job, sessions, connection)), { ...base, concurrency }),
    new Worker(QUEUE_NAMES.report, tracked<ReportJobData, RunResult>(QUEUE_NAMES.report, processReport), { ...base, concurrency: 1 }),
  ];
  // BullMQ reports connection trouble as events and reconnects; an unhandled 'error' event would end the process.
  for (const worker of workers) worker.on('error', () => undefined);
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  return {
    connection,
    close: async () => {
      await Promise.all(workers.map((w) => w.close()));
      await sessions.close();
      await closeQueueConnection(connection);
    },
  };
}
