/**
 * Admission before work (issue #20 item 2): a chat request takes a ticket when its headers arrive, before its body
 * is read, parsed, base64-decoded or written to disk. A ticket is one of `1 + maxQueue` slots (the running
 * generation and the ones that may wait) and `Content-Length` bytes of the in-flight body budget. Without one the
 * request is refused at once (429), so 24 concurrent 40 MiB uploads cost the memory of the few that can run.
 */
import { ApiError } from './api-error.js';

/** Held from the request's headers to its response; `release` is idempotent. */
export interface Ticket {
  release(): void;
}

export class Admission {
  private slotsUsed = 0;
  private bytesUsed = 0;

  constructor(
    /** Requests that may be past their headers at once: the running generation plus the queue. */
    readonly slots: number,
    /** Body bytes those requests may declare together. */
    readonly bodyBytes: number,
    /** Seconds a refused client should wait (the queue's measured estimate). */
    private readonly retryAfterSec: () => number,
  ) {}

  get inUse(): { slots: number; bytes: number } {
    return { slots: this.slotsUsed, bytes: this.bytesUsed };
  }

  /** A ticket for a body of `declaredBytes`, or ApiError 429 (`queue_full` / `inflight_bytes_full`). */
  acquire(declaredBytes: number): Ticket {
    const retry = Math.max(1, this.retryAfterSec());
    const headers = { 'retry-after': String(retry) };
    if (this.slotsUsed >= this.slots)
      throw new ApiError(429, 'rate_limit_error', `The server is busy: ${this.slotsUsed} requests are already admitted. Retry after ${retry} s.`, 'queue_full', null, headers);
    // One request alone is always admitted up to the body limit (checked before this), so a big body is never starved.
    if (this.bytesUsed > 0 && this.bytesUsed + declaredBytes > this.bodyBytes)
      throw new ApiError(429, 'rate_limit_error', `The server is receiving ${this.bytesUsed} bytes of requests already. Retry after ${retry} s.`, 'inflight_bytes_full', null, headers);
    this.slotsUsed++;
    this.bytesUsed += declaredBytes;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.slotsUsed--;
        this.bytesUsed -= declaredBytes;
      },
    };
  }
}
