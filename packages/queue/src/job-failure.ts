/**
 * A failed job's reason as BullMQ stores it (one string, `failedReason`), carrying the typed code: `[CODE] message`.
 * A BvllmError is a failure of the input or the model, which a retry cannot fix, so it fails the job at once; any
 * other error (a lost connection, a crash) is retried.
 */
import { BvllmError } from '@bvllm/core';
import { UnrecoverableError } from 'bullmq';

/** Why a video or a question has no result. */
export interface JobFailure {
  /** A `BvllmErrorCode` (`VIDEO_DECODE`, …), or `UNEXPECTED` for an error without one. */
  code: string;
  message: string;
}

/** The error a processor throws for `error`: unrecoverable (no retry) for a BvllmError, else retried. */
export function jobError(error: unknown): Error {
  if (error instanceof UnrecoverableError) return error;
  if (BvllmError.isInstance(error)) return new UnrecoverableError(`[${error.code}] ${error.message}`);
  return error instanceof Error ? error : new Error(String(error));
}

/** Reads a `failedReason` back into its code and message. */
export function parseFailure(reason: string): JobFailure {
  const match = /^\[([A-Z_]+)\] ([\s\S]*)$/.exec(reason);
  return match ? { code: match[1], message: match[2] } : { code: 'UNEXPECTED', message: reason };
}

/** The inverse of {@link parseFailure}: passes a child's failure on unchanged. */
export function failureReason(failure: JobFailure): string {
  return `[${failure.code}] ${failure.message}`;
}
