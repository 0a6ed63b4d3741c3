/**
 * A worker's inference sessions: one per model folder and runtime, opened on first use and shared by the jobs the
 * worker runs at once (a session serves concurrent requests, as the server's does). Each folder is hashed once and
 * checked against the hash a job was enqueued with.
 */
import { initBackend } from '@bvllm/core';
import { InferenceSession, type ModuleRuntime } from '@bvllm/pipeline';
import { ModelMismatchError } from './errors.js';
import type { JobBase } from './job-types.js';
import { modelHash } from './model-hash.js';

export class SessionPool {
  private readonly sessions = new Map<string, Promise<{ session: InferenceSession; hash: string }>>();

  /** `modelDir`: a folder every job runs on instead of the path in the job (the shared mount may differ here). */
  constructor(private readonly modelDir?: string) {}

  /** The session for a job's model; a folder whose hash differs from the job's fails with `MODEL_MISMATCH`. */
  async get(job: Pick<JobBase, 'modelDir' | 'modelHash' | 'runtime'>): Promise<InferenceSession> {
    const dir = this.modelDir ?? job.modelDir;
    const key = `${dir}\0${job.runtime ?? ''}`;
    let entry = this.sessions.get(key);
    if (!entry) {
      entry = open(dir, job.runtime);
      this.sessions.set(key, entry);
      // A folder that failed to open is tried afresh by the next job (it may have been mid-copy).
      entry.catch(() => this.sessions.delete(key));
    }
    const { session, hash } = await entry;
    if (hash !== job.modelHash) throw new ModelMismatchError(dir, job.modelHash, hash);
    return session;
  }

  async close(): Promise<void> {
    for (const entry of this.sessions.values()) await (await entry.catch(() => undefined))?.session.close();
    this.sessions.clear();
  }
}

async function open(dir: string, runtime?: ModuleRuntime): Promise<{ session: InferenceSession; hash: string }> {
  await initBackend();
  const hash = await modelHash(dir);
  return { session: await InferenceSession.open(dir, runtime ? { runtime } : {}), hash };
}
