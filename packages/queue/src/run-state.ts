/**
 * A run's progress, kept in Redis beside its jobs so any client (`bvllm jobs status ID`) can read it: the total,
 * and sets of the items done and failed and of the jobs running. Sets, not counters, so a job retried after a
 * stall (or run twice) counts once.
 */
import type { QueueConnection } from './connection.js';
import { JobNotFoundError } from './errors.js';

/** How long a run's records (its jobs, results and progress) stay in Redis: 7 days. */
export const RUN_TTL_S = 7 * 24 * 3600;

export interface RunInfo {
  kind: 'eval' | 'extract';
  /** Questions (eval) or videos (extract). */
  total: number;
  /** Epoch milliseconds. */
  createdAt: number;
  /** The report job's id, in the report queue. */
  reportJobId: string;
}

export interface RunCounts {
  done: number;
  failed: number;
  /** Jobs being processed now (including one whose worker died, until stall detection gives it to another). */
  running: number;
}

const keys = (connection: QueueConnection, runId: string) => {
  const base = `${connection.prefix}:run:${runId}`;
  return { info: base, done: `${base}:done`, failed: `${base}:failed`, active: `${base}:active` };
};

export async function createRun(connection: QueueConnection, runId: string, info: RunInfo): Promise<void> {
  const k = keys(connection, runId);
  await connection.redis.multi().hset(k.info, { ...info, total: String(info.total), createdAt: String(info.createdAt) }).expire(k.info, RUN_TTL_S).exec();
}

export async function readRunInfo(connection: QueueConnection, runId: string): Promise<RunInfo> {
  const raw = await connection.redis.hgetall(keys(connection, runId).info);
  if (!raw.kind) throw new JobNotFoundError(runId);
  return { kind: raw.kind as RunInfo['kind'], total: Number(raw.total), createdAt: Number(raw.createdAt), reportJobId: raw.reportJobId };
}

export async function readRunCounts(connection: QueueConnection, runId: string): Promise<RunCounts> {
  const k = keys(connection, runId);
  const [done, failed, running] = (await connection.redis.multi().scard(k.done).scard(k.failed).scard(k.active).exec())!.map(([, n]) => Number(n));
  return { done, failed, running };
}

/** Worker side: a job started, or ended with its items done or failed (or `retry`: it will run again). */
export async function markJob(connection: QueueConnection, runId: string, jobId: string, event: 'started' | 'done' | 'failed' | 'retry', items: readonly string[]): Promise<void> {
  const k = keys(connection, runId);
  const tx = connection.redis.multi();
  if (event === 'started') tx.sadd(k.active, jobId).expire(k.active, RUN_TTL_S);
  else {
    tx.srem(k.active, jobId);
    if (event !== 'retry' && items.length) {
      const set = event === 'done' ? k.done : k.failed;
      tx.sadd(set, ...items).expire(set, RUN_TTL_S);
    }
  }
  await tx.exec();
}
