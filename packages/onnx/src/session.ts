/**
 * onnxruntime-node sessions, one per model file, created once and reused. onnxruntime-node ships CPU binaries in its
 * npm tarball; its CUDA execution provider is downloaded by its install script only when the user sets
 * `ONNXRUNTIME_NODE_INSTALL_CUDA=v12` (or `v11`) while installing and allows the script to run, so 'cuda' is opt-in.
 *
 * onnxruntime-node's `run` is asynchronous in name only: it computes on the calling thread, so a session on the main
 * thread holds the event loop for a whole forward pass (seconds for a 7B prefill), and a server stops answering,
 * timers included. So by default sessions compute on one worker thread ({@link WorkerSession}): feeds go over as
 * copies (or are handed over, for a caller that consumes them), outputs come back without a copy.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { WorkerChannel } from '@bvllm/core';
import * as ort from 'onnxruntime-node';
import { OrtSessionError } from './errors.js';

export { ort };

/** Execution providers we name: onnxruntime's CPU provider, or CUDA when the user installed it. */
export type ExecutionProvider = 'cpu' | 'cuda';

/** Where a session computes: the process's onnxruntime worker thread (default), or the calling thread. */
export type SessionThread = 'worker' | 'main';

let defaultThread: SessionThread = 'worker';

/**
 * Where sessions created without a `thread` option compute, for the whole process. A server keeps the default
 * (`worker`: the event loop stays free); a batch tool with nothing else to serve may choose `main` and save the
 * message hop, about 0.1 ms a call on an idle machine and 1 ms or more on a loaded one, which adds up over a small
 * model's decoding steps.
 */
export function setSessionThread(thread: SessionThread): void {
  defaultThread = thread;
}

export interface SessionOptions {
  /** Intra-op threads; default: every core of this machine (`os.availableParallelism()`). */
  threads?: number;
  /** Tried in order, CPU last as the fallback; default `['cpu']`. */
  executionProviders?: readonly ExecutionProvider[];
  /** Default: the process's ({@link setSessionThread}; `'worker'` unless changed), so running never blocks the event loop. */
  thread?: SessionThread;
}

/** What this project asks of a session, whichever thread it computes on. */
export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  readonly outputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>>;
  release(): Promise<void>;
}

interface WireTensor {
  type: ort.Tensor.Type;
  dims: readonly number[];
  data: ort.Tensor.DataType;
}

interface SessionMeta {
  inputNames: string[];
  outputNames: string[];
  inputMetadata: ort.InferenceSession.ValueMetadata[];
  outputMetadata: ort.InferenceSession.ValueMetadata[];
}

interface Reply {
  id: number;
  meta?: SessionMeta;
  outputs?: Record<string, WireTensor>;
  error?: { message: string };
}

// Resolved through the package's own `exports`, so the path is the same from src/ and from dist/.
const WORKER_PATH = createRequire(import.meta.url).resolve('@bvllm/onnx/workers/ort-session.mjs');

/**
 * The one thread that computes every worker session of the process (onnxruntime loads once; its runs were
 * serialised on the main thread before, and are serialised here).
 */
class SessionHost {
  private readonly channel = new WorkerChannel<Record<string, unknown>, Reply>(WORKER_PATH, (reason) => new Error(`the onnxruntime worker thread failed: ${reason}`));

  async call(message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Reply> {
    const reply = await this.channel.call(message, transfer);
    if (reply.error) throw new Error(reply.error.message);
    return reply;
  }
}

let host: SessionHost | undefined;
let nextSession = 0;

/** A session computed on the process's onnxruntime worker thread. */
export class WorkerSession implements OrtSession {
  private released = false;

  private constructor(
    private readonly host: SessionHost,
    private readonly sid: number,
    private readonly meta: SessionMeta,
  ) {}

  static async create(model: string | Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<WorkerSession> {
    host ??= new SessionHost();
    const sid = nextSession++;
    const reply = await host.call({ kind: 'create', sid, model, options });
    return new WorkerSession(host, sid, reply.meta!);
  }

  get inputNames(): readonly string[] {
    return this.meta.inputNames;
  }
  get outputNames(): readonly string[] {
    return this.meta.outputNames;
  }
  get inputMetadata(): readonly ort.InferenceSession.ValueMetadata[] {
    return this.meta.inputMetadata;
  }
  get outputMetadata(): readonly ort.InferenceSession.ValueMetadata[] {
    return this.meta.outputMetadata;
  }

  /**
   * Runs on the worker. Feeds are copied there, except those named in `handOver`, whose buffers move instead (a
   * decoder step consumes its past key/values, which would otherwise be copied at every token); a handed-over
   * feed that views part of a larger buffer is copied all the same.
   */
  async run(feeds: Record<string, ort.Tensor>, handOver: readonly string[] = []): Promise<Record<string, ort.Tensor>> {
    if (this.released) throw new Error('the session was released');
    const wire: Record<string, WireTensor> = {};
    const transfer: ArrayBuffer[] = [];
    for (const [name, t] of Object.entries(feeds)) {
      const data = t.data as ArrayBufferView;
      const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
      if (handOver.includes(name) && whole && !transfer.includes(data.buffer as ArrayBuffer)) transfer.push(data.buffer as ArrayBuffer);
      wire[name] = { type: t.type, dims: t.dims, data: t.data };
    }
    const reply = await this.host.call({ kind: 'run', sid: this.sid, feeds: wire }, transfer);
    return Object.fromEntries(Object.entries(reply.outputs!).map(([name, t]) => [name, new ort.Tensor(t.type, t.data as never, t.dims)]));
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.host.call({ kind: 'release', sid: this.sid }).catch(() => undefined);
  }
}

function ortOptions(options: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: options.threads ?? availableParallelism(),
    interOpNumThreads: 1,
    executionProviders: [...(options.executionProviders ?? ['cpu'])],
    graphOptimizationLevel: 'all',
  };
}

/**
 * One session for a model file path or in-memory bytes. A model with external data must be given by path (its
 * data file is resolved next to it). Failures are an {@link OrtSessionError} naming the file.
 */
export async function createSession(model: string | Uint8Array, options: SessionOptions = {}): Promise<OrtSession> {
  const file = typeof model === 'string' ? model : '<bytes>';
  try {
    if ((options.thread ?? defaultThread) === 'worker') return await WorkerSession.create(model, ortOptions(options));
    return typeof model === 'string' ? await ort.InferenceSession.create(model, ortOptions(options)) : await ort.InferenceSession.create(model, ortOptions(options));
  } catch (error) {
    throw new OrtSessionError(file, 'create a session', error);
  }
}

/**
 * Runs `session`, wrapping failures in an {@link OrtSessionError} that names `file`. `handOver` names feeds the
 * caller never reads again, whose buffers a worker session takes instead of copying them.
 */
export async function runSession(session: OrtSession, feeds: Record<string, ort.Tensor>, file = '<session>', handOver: readonly string[] = []): Promise<Record<string, ort.Tensor>> {
  try {
    return await (session instanceof WorkerSession ? session.run(feeds, handOver) : session.run(feeds));
  } catch (error) {
    throw new OrtSessionError(file, 'run', error);
  }
}

/**
 * Sessions by absolute model path and options, so every caller of the same exported file shares one session
 * (creating one costs the graph optimisation and a copy of the weights).
 */
export class OrtSessionCache {
  private readonly sessions = new Map<string, Promise<OrtSession>>();

  constructor(private readonly defaults: SessionOptions = {}) {}

  get(path: string, options: SessionOptions = {}): Promise<OrtSession> {
    const merged = { ...this.defaults, ...options };
    const key = `${resolve(path)}|${merged.threads ?? ''}|${(merged.executionProviders ?? ['cpu']).join(',')}|${merged.thread ?? defaultThread}`;
    let session = this.sessions.get(key);
    if (!session) {
      session = createSession(resolve(path), merged);
      // A failed creation is not cached: the next call retries (the file may have been re-exported).
      session.catch(() => this.sessions.delete(key));
      this.sessions.set(key, session);
    }
    return session;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Releases every session's native memory. */
  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of await Promise.allSettled(all)) if (s.status === 'fulfilled') await s.value.release();
  }
}
