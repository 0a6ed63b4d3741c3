/**
 * A live stream watched by one session (issue #22 items 2–3): a {@link LiveSource} gives frames as they arrive,
 * each batch is preprocessed and encoded on the session's tower at once, and its features go into a
 * {@link LiveWindow}. A question snapshots the window as it stands and runs the session's own visual path and
 * decoder on it (frame selection → merge → sampling → LLM, seeded as `InferenceSession.stream` seeds it), so a
 * question costs what a question about a W-second video costs, whatever the stream's age, and never re-encodes.
 *
 *   source ─► frames (rgb, stream time) ─► CLIP preprocessing (worker threads) ─► tower ─► window ring (cls, feature, f16 patches)
 *   question ─► snapshot [T ≤ W·fps + long-term] ─► session.stream ─► answer citing the frames' stream times
 */
import { AbortedError, InvalidArgumentError } from '@bvllm/core';
import { StreamClosedError, StreamStalledError, openLiveSource, type LiveSource, type LiveSourceEvent, type LiveSourceOptions, type LiveSourceState, type StreamGap } from '@bvllm/vision-encoder';
import type { AskOptions, AskResult, ChatTurn, InferenceSession } from './inference-session.js';
import { LiveWindow, type LiveWindowStatus } from './inference/live-window.js';
import { sharedClipPool, type ClipPool } from './inference/clip-pool.js';
import type { EncodedVideo } from './inference/encoded-video.js';

export interface LiveStreamOptions extends Omit<LiveSourceOptions, 'onEvent'> {
  /** W, seconds of stream time the window keeps. Default 600 (10 minutes). */
  windowSec?: number;
  /** Coarse long-term memory: one frame per `everySec` from before the window, at most `maxFrames`. */
  longTerm?: { everySec: number; maxFrames: number };
  /** Ring slots beyond the window, so a question's snapshot survives the frames that arrive meanwhile. */
  reserveFrames?: number;
  /** Float16 patch bytes of the ring kept in memory (more goes to a fixed-size temp file). Default 64 MiB. */
  patchMemoryBytes?: number;
  /** Most frames per tower call (what is queued, up to this). Default the model's `vision.batchSize`. */
  batchSize?: number;
  /**
   * Share of the wall clock the stream may spend encoding, in (0, 1]: after a batch that took t ms the stream rests
   * t·(1/share − 1) ms (frames arriving meanwhile queue, and past the queue are dropped and counted). Default 1.
   */
  cpuShare?: number;
  onEvent?: (event: LiveSourceEvent) => void;
  /** Where frames are CLIP-preprocessed, off the event loop (default: the process's shared pool). */
  clipPool?: ClipPool;
}

export interface LiveStreamStatus {
  source: string;
  state: LiveSourceState;
  /** Frames the source delivered, frames encoded into the window, frames dropped because encoding lagged. */
  framesSeen: number;
  framesEncoded: number;
  framesDropped: number;
  /** Connections that gave frames (1 + reconnects that worked). */
  connections: number;
  gaps: readonly StreamGap[];
  window: LiveWindowStatus;
  /** Mean tower + preprocessing milliseconds per frame (0 before the first batch). */
  encodeMsPerFrame: number;
  /** Why the stream failed (state `failed`): the source's or the encoder's error. */
  error?: Error;
}

export interface LiveAskOptions extends AskOptions {
  /** Frames the window must hold before the question runs; it waits for them. Default 1. */
  minFrames?: number;
}

export interface LiveAskResult extends AskResult {
  /** The frames the question saw (long-term memory, then the window): count, stream-time span, each frame's time. */
  window: { frames: number; fromSec: number; toSec: number; timestampsSec: number[] };
  /** Stream time of each frame the answer used, in the order the LLM saw them. */
  citedSec: number[];
}

interface Waiter {
  minFrames: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class LiveStream {
  private readonly window: LiveWindow;
  private readonly source: LiveSource;
  private readonly waiters = new Set<Waiter>();
  private readonly ingest: Promise<void>;
  private fatal?: Error;
  private ended = false;
  private closed = false;
  private framesEncoded = 0;
  private encodeMs = 0;
  private rest?: { timer: NodeJS.Timeout; resolve: () => void };

  private constructor(
    readonly session: InferenceSession,
    readonly url: string,
    private readonly options: LiveStreamOptions,
  ) {
    const fps = options.fps ?? 1;
    const share = options.cpuShare ?? 1;
    if (!(share > 0 && share <= 1)) throw new InvalidArgumentError('cpuShare', `must be in (0, 1], got ${share}`);
    const vision = session.vision;
    const numPatches = (vision.imageSize / (session.config.vision.vit as { patchSize: number }).patchSize) ** 2;
    this.window = new LiveWindow({
      windowSec: options.windowSec ?? 600,
      fps,
      numPatches,
      width: vision.hiddenSize,
      selectionFeature: session.selectionFeature(),
      longTerm: options.longTerm,
      reserveFrames: options.reserveFrames,
      patchMemoryBytes: options.patchMemoryBytes,
    });
    this.source = openLiveSource(url, {
      ...options,
      fps,
      onEvent: (event) => {
        if (event.type === 'stalled') this.rejectWaiters(new StreamStalledError(url, event.silentMs));
        options.onEvent?.(event);
      },
    });
    this.ingest = this.run(share);
  }

  /** Opens `url` (see `LiveSource` for the inputs) and starts encoding its frames into a window on `session`'s tower. */
  static open(session: InferenceSession, url: string, options: LiveStreamOptions = {}): LiveStream {
    return new LiveStream(session, url, options);
  }

  status(): LiveStreamStatus {
    const s = this.source.status();
    return {
      source: this.url,
      state: this.closed ? 'closed' : this.fatal ? 'failed' : s.state,
      framesSeen: s.framesSeen,
      framesEncoded: this.framesEncoded,
      framesDropped: s.framesDropped,
      connections: s.connections,
      gaps: s.gaps,
      window: this.window.status(),
      encodeMsPerFrame: this.framesEncoded ? this.encodeMs / this.framesEncoded : 0,
      ...(this.fatal && { error: this.fatal }),
    };
  }

  /**
   * Resolves once the window holds `minFrames` frames. Rejects with the source's error (StreamOpenError,
   * StreamNoVideoError), StreamStalledError when the source stalls while this waits, StreamClosedError when the
   * stream closes or ends first, or AbortedError.
   */
  ready(minFrames = 1, signal?: AbortSignal): Promise<void> {
    if (this.window.numFrames >= minFrames) return Promise.resolve();
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.closed || this.ended) return Promise.reject(new StreamClosedError(this.url));
    if (signal?.aborted) return Promise.reject(new AbortedError('waiting for live frames'));
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => waiter.reject(new AbortedError('waiting for live frames'));
      const waiter: Waiter = {
        minFrames,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          this.waiters.delete(waiter);
          resolve();
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          this.waiters.delete(waiter);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  /** The window as it stands, for one question (the caller closes it; closing frees nothing of the stream's). */
  snapshot(): EncodedVideo {
    if (this.closed) throw new StreamClosedError(this.url);
    return this.window.snapshot();
  }

  /**
   * Streams the answer to the last user turn about the window as it stands when the question starts (after
   * waiting for `minFrames`). The result cites the stream time of every frame used.
   */
  async *ask(question: string | readonly ChatTurn[], options: LiveAskOptions = {}): AsyncGenerator<string, LiveAskResult> {
    const turns: readonly ChatTurn[] = typeof question === 'string' ? [{ role: 'user', content: question }] : question;
    await this.ready(options.minFrames ?? 1, options.signal);
    const video = this.snapshot();
    try {
      const window = { frames: video.numFrames, fromSec: video.timestampsSec[0], toSec: video.timestampsSec[video.numFrames - 1], timestampsSec: [...video.timestampsSec] };
      const answer = this.session.stream(video, turns, options);
      for (;;) {
        const next = await answer.next();
        if (next.done) return { ...next.value, window, citedSec: next.value.selection.frames.map((f) => f.timestampSec) };
        yield next.value;
      }
    } finally {
      video.close();
    }
  }

  /** Runs {@link ask} to the end. */
  async answer(question: string | readonly ChatTurn[], options: LiveAskOptions = {}): Promise<LiveAskResult & { text: string }> {
    let text = '';
    const stream = this.ask(question, options);
    for (;;) {
      const next = await stream.next();
      if (next.done) return { ...next.value, text };
      text += next.value;
    }
  }

  /** Stops the source (ffmpeg is killed), waits for the batch being encoded, frees the window; idempotent. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.rejectWaiters(new StreamClosedError(this.url));
      if (this.rest) {
        clearTimeout(this.rest.timer);
        this.rest.resolve();
      }
    }
    await this.source.close();
    await this.ingest;
    this.window.close();
  }

  private rejectWaiters(error: Error): void {
    for (const w of [...this.waiters]) w.reject(error);
  }

  private async run(share: number): Promise<void> {
    const vision = this.session.vision;
    const pre = vision.preprocessOptions();
    const s = pre.cropSize;
    const c = vision.hiddenSize;
    const batch = this.options.batchSize ?? this.session.config.vision.batchSize;
    let pixels: Float32Array | undefined;
    const clipPool = this.options.clipPool ?? sharedClipPool();
    try {
      while (!this.closed) {
        const frames = await this.source.next(batch);
        if (frames.length === 0 || this.closed) break;
        const t0 = performance.now();
        // One pixel buffer per batch size, reused: a long stream should not churn a batch of floats per batch.
        if (pixels?.length !== frames.length * s * s * 3) pixels = new Float32Array(frames.length * s * s * 3);
        const batchPixels = pixels;
        // Off the event loop (a 1080p camera frame is 50–200 ms of resize), each frame at its own size: a live
        // source may change resolution mid-stream. The frames' bytes are handed to the workers.
        const done = await Promise.all(frames.map((f) => clipPool.preprocess(f.rgb, f.width, f.height, pre)));
        done.forEach((p, i) => batchPixels.set(p, i * s * s * 3));
        const out = await vision.encode(batchPixels, frames.length);
        if (this.closed) break;
        const per = out.numPatches * c;
        frames.forEach((f, i) =>
          this.window.push({ cls: out.cls.subarray(i * c, (i + 1) * c), patches: out.patches.subarray(i * per, (i + 1) * per), timestampSec: f.timestampSec, sequence: f.sequence }),
        );
        const ms = performance.now() - t0;
        this.framesEncoded += frames.length;
        this.encodeMs += ms;
        for (const w of [...this.waiters]) if (this.window.numFrames >= w.minFrames) w.resolve();
        if (share < 1) await new Promise<void>((resolve) => (this.rest = { timer: setTimeout(resolve, ms * (1 / share - 1)), resolve }));
      }
      this.ended = true;
      this.rejectWaiters(new StreamClosedError(this.url));
    } catch (error) {
      this.fatal = error as Error;
      this.rejectWaiters(this.fatal);
      // An encoder failure leaves the source running for nothing.
      await this.source.close();
    }
  }
}
