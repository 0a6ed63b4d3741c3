/** The queue's failures, each with a stable code (`@bvllm/core`'s `BvllmError`). */
import { BvllmError } from '@bvllm/core';

/** `redis://user:secret@host` → `redis://user:***@host`: a URL is named in errors, its password never. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
}

/** Redis did not answer at `url` (down, unreachable, refused, wrong password). */
export class RedisUnavailableError extends BvllmError {
  readonly url: string;
  constructor(url: string, reason: string, options?: { cause?: unknown }) {
    super('REDIS_UNAVAILABLE', `Redis at ${redactUrl(url)} is unavailable: ${reason}`, options);
    this.url = redactUrl(url);
  }
}

/** No run with this id in Redis: never enqueued there, or expired. */
export class JobNotFoundError extends BvllmError {
  constructor(readonly runId: string) {
    super('JOB_NOT_FOUND', `no job ${runId} in this Redis (never enqueued here, or older than its retention)`);
  }
}

/**
 * A run that was in Redis is gone while it was followed (`JOB_NOT_FOUND`, as it now is): Redis restarted without
 * persistence, or was flushed, so its jobs, progress and stored answers are lost and it will never finish.
 */
export class RunLostError extends BvllmError {
  constructor(readonly runId: string) {
    super('JOB_NOT_FOUND', `run ${runId} vanished from Redis while it ran (a restart without persistence, or a flush); enqueue it again`);
  }
}

/** A worker's model folder is not the one a job was enqueued for, so its answers would not be that model's. */
export class ModelMismatchError extends BvllmError {
  constructor(
    readonly modelDir: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super('MODEL_MISMATCH', `${modelDir}: model hash ${actual.slice(0, 12)}, but the job was enqueued for ${expected.slice(0, 12)}`);
  }
}

/** A run's final job (the one that gathers the report) failed; `reason` is its failure as the worker gave it. */
export class JobFailedError extends BvllmError {
  constructor(
    readonly runId: string,
    readonly reason: string,
  ) {
    super('JOB_FAILED', `job ${runId} failed: ${reason}`);
  }
}
