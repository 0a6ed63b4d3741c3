/**
 * Generations run one at a time: tensor work is single-threaded in this process (tfjs WASM), so running two
 * interleaved would only make both slower and double peak memory. Waiting is bounded; past `capacity` a request
 * is refused at once (429) with an honest Retry-After from the measured service time.
 */
import { AbortedError } from '@bvllm/core';
import { ApiError } from './api-error.js';

interface Waiter {
  start: () => void;
}

export class GenerationQueue {
  private busy = false;
  private readonly waiting: Waiter[] = [];
  /** Exponential moving average of one job's duration, for Retry-After. */
  private meanJobMs = 1000;

  constructor(readonly capacity: number) {}

  /** Jobs waiting behind the running one. */
  get depth(): number {
    return this.waiting.length;
  }

  get running(): boolean {
    return this.busy;
  }

  /** Seconds until a slot is likely free: the queue's length times the measured job time. */
  retryAfterSec(): number {
    return Math.max(1, Math.ceil(((this.waiting.length + 1) * this.meanJobMs) / 1000));
  }

  /** Runs `job` when it is its turn. Throws ApiError 429 when the queue is full, AbortedError if `signal` fires while waiting. */
  async run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw new AbortedError('queued generation');
    if (this.busy) {
      if (this.waiting.length >= this.capacity) {
        const retryAfterSec = Math.max(1, Math.ceil(((this.waiting.length + 1) * this.meanJobMs) / 1000));
        throw new ApiError(429, 'rate_limit_error', `The server is busy: ${this.waiting.length} generations are already queued. Retry after ${retryAfterSec} s.`, 'queue_full', null, {
          'retry-after': String(retryAfterSec),
        });
      }
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          start: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
        };
        const onAbort = () => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1);
          reject(new AbortedError('queued generation'));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(waiter);
      });
    } else this.busy = true;
    const started = performance.now();
    try {
      return await job();
    } finally {
      this.meanJobMs = 0.8 * this.meanJobMs + 0.2 * (performance.now() - started);
      const next = this.waiting.shift();
      if (next) next.start();
      else this.busy = false;
    }
  }
}
