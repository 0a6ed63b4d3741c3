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
import { BvllmError, WorkerChannel } from '@bvllm/core';
import type { PreprocessOptions } from '@bvllm/vision-encoder';

/** A preprocessing worker failed (it threw, or its thread died); names the cause. */
export class PreprocessWorkerError extends BvllmError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('VIDEO_ENCODE', `CLIP preprocessing failed: ${reason}`, options);
  }
}

interface Reply {
  id: number;
  pixels?: Float32Array;
  error?: { message: string };
}

// Resolved through the package's own `exports`, so the path is the same from src/ and from dist/.
const WORKER_PATH = createRequire(import.meta.url).resolve('@bvllm/pipeline/workers/clip-preprocess.mjs');

class Lane {
  private readonly channel = new WorkerChannel<Record<string, unknown>, Reply>(WORKER_PATH, (reason, cause) => new PreprocessWorkerError(reason, { cause }));

  get pending(): number {
    return this.channel.pending;
  }

  async run(rgb: Uint8Array, width: number, height: number, options: PreprocessOptions): Promise<Float32Array> {
    // The frame's own buffer moves to the worker when it owns it whole; a view into a larger buffer is copied.
    const whole = rgb.byteOffset === 0 && rgb.byteLength === rgb.buffer.byteLength;
    const bytes = whole ? rgb : rgb.slice();
    const reply = await this.channel.call({ rgb: bytes, width, height, options }, [bytes.buffer as ArrayBuffer]);
    if (!reply.pixels) throw new PreprocessWorkerError(reply.error?.message ?? 'no result');
    return reply.pixels;
  }

  close(): Promise<void> {
    return this.channel.close();
  }
}

export class ClipPool {
  private readonly lanes: Lane[];

  /** `size` worker threads (default: half the cores, at least one, at most 4: the tower needs the rest). */
  constructor(size = Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2)))) {
    this.lanes = Array.from({ length: size }, () => new Lane());
  }

  /**
   * One RGB frame (`height × width × 3` bytes, interleaved) → float32 NHWC `[S, S, 3]`, exactly `preprocessClip`'s.
   * The frame's buffer is transferred when the frame owns it: do not read `rgb` afterwards.
   */
  preprocess(rgb: Uint8Array, width: number, height: number, options: PreprocessOptions): Promise<Float32Array> {
    const lane = this.lanes.reduce((best, l) => (l.pending < best.pending ? l : best), this.lanes[0]);
    return lane.run(rgb, width, height, options);
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
