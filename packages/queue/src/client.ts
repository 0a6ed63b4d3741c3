/**
 * The producer's side, owned by whoever enqueues: `QueueClient.connect(url)` checks Redis, `enqueueEval` /
 * `enqueueExtract` add a run and return its id, `status(id)` and `wait(id)` read it from any machine.
 */
import { Job, Queue } from 'bullmq';
import { closeQueueConnection, connectQueue, type ConnectOptions, type QueueConnection } from './connection.js';
import { enqueueEval, enqueueExtract, type EvalRunOptions, type ExtractRunOptions } from './enqueue.js';
import { JobFailedError, JobNotFoundError, RunLostError } from './errors.js';
import { QUEUE_NAMES, type RunResult } from './job-types.js';
import { readRunCounts, readRunInfo, type RunCounts, type RunInfo } from './run-state.js';

export interface RunStatus extends RunInfo, RunCounts {
  runId: string;
  state: 'running' | 'completed' | 'failed';
  /** Milliseconds left at the rate so far (done items per elapsed time); undefined before the first is done. */
  etaMs?: number;
  /** Once completed. */
  result?: RunResult;
  /** Once failed: the report job's reason. */
  failedReason?: string;
}

export interface WaitOptions {
  /** Between polls. Default 500 ms. */
  intervalMs?: number;
  /** Every poll's status, for a progress line. */
  onStatus?: (status: RunStatus) => void;
  /**
   * While Redis is unreachable (a poll waits on a connection that is not ready): every `intervalMs`, how long this
   * poll has waited. Without it a follower's progress line would just stop moving during an outage.
   */
  onUnreachable?: (waitedMs: number) => void;
  signal?: AbortSignal;
}

export class QueueClient {
  private constructor(
    readonly connection: QueueConnection,
    private readonly reports: Queue,
  ) {}

  /** Connects; a Redis that is down or unreachable fails with `REDIS_UNAVAILABLE` naming the URL. */
  static async connect(url: string, options: ConnectOptions = {}): Promise<QueueClient> {
    const connection = await connectQueue(url, options);
    const reports = new Queue(QUEUE_NAMES.report, { connection: connection.bullmq, prefix: connection.prefix });
    // During an outage BullMQ reports each failed reconnect as an event (printed when unheard) while the poll's
    // commands wait for Redis to come back: the progress line pausing is the symptom worth showing, not these.
    reports.on('error', () => undefined);
    return new QueueClient(connection, reports);
  }

  /** An eval run over a split: its run id. */
  enqueueEval(options: EvalRunOptions): Promise<string> {
    return enqueueEval(this.connection, options);
  }

  /** An extract run over videos: its run id. */
  enqueueExtract(options: ExtractRunOptions): Promise<string> {
    return enqueueExtract(this.connection, options);
  }

  /** The run's progress and, when it has finished, its result. Throws `JOB_NOT_FOUND` for an unknown id. */
  async status(runId: string): Promise<RunStatus> {
    const info = await readRunInfo(this.connection, runId);
    const counts = await readRunCounts(this.connection, runId);
    // The state first, then the job: read the other way round, a report that completes in between shows as
    // completed with the returnvalue of the earlier read (null). Completion sets both at once.
    const state = await this.reports.getJobState(info.reportJobId);
    const job = state === 'completed' || state === 'failed' ? await Job.fromId<unknown, RunResult>(this.reports, info.reportJobId) : undefined;
    const left = info.total - counts.done - counts.failed;
    const status: RunStatus = {
      runId,
      ...info,
      ...counts,
      state: job && state === 'completed' ? 'completed' : job && state === 'failed' ? 'failed' : 'running',
      etaMs: counts.done > 0 ? ((Date.now() - info.createdAt) / counts.done) * left : undefined,
    };
    if (status.state === 'completed') status.result = job!.returnvalue;
    if (status.state === 'failed') status.failedReason = job!.failedReason;
    return status;
  }

  /**
   * Polls until the run has finished and returns its result. A failed report job throws `JOB_FAILED`; a failed
   * video or question does not: the result lists it with its code. Polls wait through a Redis outage; a run that
   * disappears meanwhile (a Redis restarted without its data) throws `RUN_LOST`, an unknown id `JOB_NOT_FOUND`.
   */
  async wait(runId: string, options: WaitOptions = {}): Promise<RunResult> {
    const intervalMs = options.intervalMs ?? 500;
    for (let seen = false; ; seen = true) {
      const status = await this.whileUnreachable(
        this.status(runId).catch((error: unknown) => {
          throw seen && error instanceof JobNotFoundError ? new RunLostError(runId) : error;
        }),
        intervalMs,
        options.onUnreachable,
      );
      options.onStatus?.(status);
      if (status.state === 'completed') return status.result!;
      if (status.state === 'failed') throw new JobFailedError(runId, status.failedReason ?? 'unknown');
      if (options.signal?.aborted) throw options.signal.reason;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  /** `poll`, reporting every `intervalMs` it waits while the connection is down. */
  private async whileUnreachable<T>(poll: Promise<T>, intervalMs: number, report?: (waitedMs: number) => void): Promise<T> {
    if (!report) return poll;
    const started = performance.now();
    const ticker = setInterval(() => {
      if (this.connection.redis.status !== 'ready') report(performance.now() - started);
    }, intervalMs);
    try {
      return await poll;
    } finally {
      clearInterval(ticker);
    }
  }

  async close(): Promise<void> {
    await this.reports.close();
    await closeQueueConnection(this.connection);
  }
}
