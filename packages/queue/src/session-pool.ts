/**
 * A worker's inference sessions: one per model folder and runtime, opened on first use and shared by the jobs the
 * worker runs at once (a session serves concurrent requests, as the server's does). Each folder is hashed once and
 * checked against the hash a job was enqueued with.
 */
import { initBackend } from '@bvllm/core';
import { InferenceSession, type InferenceSessionOptions, type ModuleRuntime } from '@bvllm/pipeline';
import { ModelMismatchError } from './errors.js';
import type { JobBase } from './job-types.js';
import { modelHash } from './model-hash.js';

export class SessionPool {
  private readonly sessions = new Map<string, Promise<{ session: InferenceSession; hash: string }>>();

  /**
   * `modelDir`: a folder every job runs on instead of the path in the job (the shared mount may differ here).
   * `threads`: onnxruntime intra-op threads of each session (default every core; 1 when several workers share a
   * machine, so each takes one core instead of all of them contending).
   */
  constructor(
    private readonly modelDir?: string,
    private readonly threads?: number,
  ) {}

  /** Opens `modelDir`'s session now, so a broken folder fails at start and the first job does not pay the open. */
  async preload(runtime?: ModuleRuntime): Promise<void> {
    if (!this.modelDir) return;
    await this.entry(this.modelDir, runtime);
  }

  /** The session for a job's model; a folder whose hash differs from the job's fails with `MODEL_MISMATCH`. */
  async get(job: Pick<JobBase, 'modelDir' | 'modelHash' | 'runtime'>): Promise<InferenceSession> {
    const dir = this.modelDir ?? job.modelDir;
    const { session, hash } = await this.entry(dir, job.runtime);
    if (hash !== job.modelHash) throw new ModelMismatchError(dir, job.modelHash, hash);
    return session;
  }

  private entry(dir: string, runtime?: ModuleRuntime): Promise<{ session: InferenceSession; hash: string }> {
    const key = `${dir}\0${runtime ?? ''}`;
    let entry = this.sessions.get(key);
    if (!entry) {
      entry = open(dir, { ...(runtime && { runtime }), ...(this.threads && { threads: this.threads }) });
      this.sessions.set(key, entry);
      // A folder that failed to open is tried afresh by the next job (it may have been mid-copy).
      entry.catch(() => this.sessions.delete(key));
    }
    return entry;
  }

  async close(): Promise<void> {
    for (const entry of this.sessions.values()) await (await entry.catch(() => undefined))?.session.close();
    this.sessions.clear();
  }
}

async function open(dir: string, options: InferenceSessionOptions): Promise<{ session: InferenceSession; hash: string }> {
  await initBackend();
  const hash = await modelHash(dir);
  return { session: await InferenceSession.open(dir, options), hash };
}
