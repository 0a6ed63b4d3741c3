/**
 * CLIP preprocessing on worker threads (issue #20 item 2). The shortest-edge bicubic resize of a 1080p frame costs
 * 50–200 ms of JavaScript; on the event loop that is how long a server's `/health`, its timers and every other
 * request wait, once per frame. Here each frame goes to a worker (its bytes transferred, not copied) and comes back
 * as the same float32 NHWC pixels `preprocessClip` gives, bit for bit, while the event loop stays free. With more than
 * one worker, the frames of a chunk are resized in parallel, and the next chunk can be resized while the tower
 * encodes the current one.
 *
 * Workers are started on first use and unreferenced while idle, so an idle pool never keeps a process alive.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BvllmError } from '@bvllm/core';
import type { PreprocessOptions } from '@bvllm/vision-encoder';

/** A preprocessing worker failed (it threw, or its thread died); names the cause. */
export class PreprocessWorkerError extends BvllmError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('VIDEO_ENCODE', `CLIP preprocessing failed: ${reason}`, options);
  }
}

interface Task {
  resolve(pixels: Float32Array): void;
  reject(error: Error): void;
}

interface Reply {
  id: number;
  pixels?: Float32Array;
  error?: { message: string };
}

// Resolved through the package's own `exports`, so the path is the same from src/ and from dist/.
const WORKER_PATH = createRequire(import.meta.url).resolve('@bvllm/pipeline/workers/clip-preprocess.mjs');

class Lane {
  private worker: Worker | undefined;
  private readonly tasks = new Map<number, Task>();

  get pending(): number {
    return this.tasks.size;
  }

  run(id: number, rgb: Uint8Array, width: number, height: number, options: PreprocessOptions): Promise<Float32Array> {
    const worker = this.start();
    return new Promise<Float32Array>((resolve, reject) => {
      this.tasks.set(id, { resolve, reject });
      worker.ref();
      // The frame's own buffer moves to the worker when it owns it whole; a view into a larger buffer is copied.
      const whole = rgb.byteOffset === 0 && rgb.byteLength === rgb.buffer.byteLength;
      const bytes = whole ? rgb : rgb.slice();
      worker.postMessage({ id, rgb: bytes, width, height, options }, [bytes.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_PATH);
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const task = this.tasks.get(reply.id);
      if (!task) return;
      this.tasks.delete(reply.id);
      if (this.tasks.size === 0) worker.unref();
      if (reply.pixels) task.resolve(reply.pixels);
      else task.reject(new PreprocessWorkerError(reply.error?.message ?? 'no result'));
    });
    const fail = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const task of this.tasks.values()) task.reject(error);
      this.tasks.clear();
    };
    worker.on('error', (error) => fail(new PreprocessWorkerError(error.message, { cause: error })));
    worker.on('exit', (code) => fail(new PreprocessWorkerError(`the worker thread exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }
}

export class ClipPool {
  private readonly lanes: Lane[];
  private next = 0;

  /** `size` worker threads (default: half the cores, at least one, at most 4: the tower needs the rest). */
  constructor(size = Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2)))) {
    this.lanes = Array.from({ length: size }, () => new Lane());
  }

  get size(): number {
    return this.lanes.length;
  }

  /**
   * One RGB frame (`height × width × 3` bytes, interleaved) → float32 NHWC `[S, S, 3]`, exactly `preprocessClip`'s.
   * The frame's buffer is transferred when the frame owns it: do not read `rgb` afterwards.
   */
  preprocess(rgb: Uint8Array, width: number, height: number, options: PreprocessOptions): Promise<Float32Array> {
    const lane = this.lanes.reduce((best, l) => (l.pending < best.pending ? l : best), this.lanes[0]);
    return lane.run(this.next++, rgb, width, height, options);
  }

  /** Frames of one chunk → their pixels concatenated, `[B, S, S, 3]`. */
  async preprocessBatch(frames: readonly Uint8Array[], width: number, height: number, options: PreprocessOptions): Promise<Float32Array> {
    const s = options.cropSize;
    const each = await Promise.all(frames.map((rgb) => this.preprocess(rgb, width, height, options)));
    const out = new Float32Array(frames.length * s * s * 3);
    each.forEach((pixels, i) => out.set(pixels, i * s * s * 3));
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.close()));
  }
}

let shared: ClipPool | undefined;

/** The process's pool, shared by every session (preprocessing holds no state). */
export function sharedClipPool(): ClipPool {
  shared ??= new ClipPool();
  return shared;
}
