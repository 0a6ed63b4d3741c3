/**
 * onnxruntime-node sessions, one per model file, created once and reused. onnxruntime-node ships CPU binaries in its
 * npm tarball; its CUDA execution provider is downloaded by its install script only when the user sets
 * `ONNXRUNTIME_NODE_INSTALL_CUDA=v12` (or `v11`) while installing and allows the script to run, so 'cuda' is opt-in.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { OrtSessionError } from './errors.js';

export { ort };

/** Execution providers we name: onnxruntime's CPU provider, or CUDA when the user installed it. */
export type ExecutionProvider = 'cpu' | 'cuda';

export interface SessionOptions {
  /** Intra-op threads; default: every core of this machine (`os.availableParallelism()`). */
  threads?: number;
  /** Tried in order, CPU last as the fallback; default `['cpu']`. */
  executionProviders?: readonly ExecutionProvider[];
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
export async function createSession(model: string | Uint8Array, options: SessionOptions = {}): Promise<ort.InferenceSession> {
  const file = typeof model === 'string' ? model : '<bytes>';
  try {
    return typeof model === 'string' ? await ort.InferenceSession.create(model, ortOptions(options)) : await ort.InferenceSession.create(model, ortOptions(options));
  } catch (error) {
    throw new OrtSessionError(file, 'create a session', error);
  }
}

/** Runs `session`, wrapping failures in an {@link OrtSessionError} that names `file`. */
export async function runSession(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, file = '<session>'): Promise<Record<string, ort.Tensor>> {
  try {
    return await session.run(feeds);
  } catch (error) {
    throw new OrtSessionError(file, 'run', error);
  }
}

/**
 * Sessions by absolute model path and options, so every caller of the same exported file shares one session
 * (creating one costs the graph optimisation and a copy of the weights).
 */
export class OrtSessionCache {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  constructor(private readonly defaults: SessionOptions = {}) {}

  get(path: string, options: SessionOptions = {}): Promise<ort.InferenceSession> {
    const merged = { ...this.defaults, ...options };
    const key = `${resolve(path)}|${merged.threads ?? ''}|${(merged.executionProviders ?? ['cpu']).join(',')}`;
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
