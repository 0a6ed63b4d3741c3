/**
 * Redis lost mid-run: the redis-server process is SIGKILLed while worker processes have jobs in hand, and started
 * again on the same port. With its data (an append-only file synced on every write, as a deployment should run it)
 * the workers and the client reconnect and the run finishes with the report it would have had. Without its data the
 * run is gone: the client says so (`RunLostError`) instead of waiting forever, and the workers take the next run.
 * Each test has its own redis-server, not the global one the other tests share.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@bvllm/core';
import { defaultModelDir } from '@bvllm/bvllm-tiny';
import { InferenceSession, evaluateSplit, type EvaluateResult } from '@bvllm/pipeline';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QueueClient, type RunStatus } from './client.js';
import { RunLostError } from './errors.js';
import { startLocalRedis, type LocalRedis, type LocalRedisOptions } from './redis-server.js';
import { spawnWorker, stopWorker, tinySplit } from '../test/workers.js';

const modelDir = defaultModelDir();
const scratch = (name: string) => mkdtempSync(join(tmpdir(), `bvllm-queue-${name}-`));
let data: { dir: string; split: string };
let baseline: EvaluateResult;
let redis: LocalRedis | undefined;
let client: QueueClient | undefined;
const running: ChildProcess[] = [];

beforeAll(async () => {
  await initBackend();
  data = await tinySplit(4);
  const session = await InferenceSession.open(modelDir, { featureCacheDir: scratch('cache') });
  baseline = await evaluateSplit(session, data.split);
  await session.close();
});
afterEach(async () => {
  await Promise.all(running.splice(0).map(stopWorker));
  await client?.close();
  await redis?.stop();
});

/** Polls the run until `until` holds of its status (or it has finished, which the caller checks). */
async function waitFor(id: string, until: (s: RunStatus) => boolean): Promise<RunStatus> {
  for (;;) {
    const status = await client!.status(id);
    if (until(status) || status.state !== 'running') return status;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Two workers and an eval run following, until some questions are done and some are not: then Redis is SIGKILLed. */
async function killMidRun(options: LocalRedisOptions): Promise<{ id: string; result: Promise<unknown>; atKill: RunStatus; outage: number[] }> {
  redis = await startLocalRedis(options);
  client = await QueueClient.connect(redis.url);
  // A short lock: a job whose lock lapsed while Redis was down is found stalled soon after, and runs again.
  running.push(...(await Promise.all([spawnWorker(redis.url, 'bvllm', 2000), spawnWorker(redis.url, 'bvllm', 2000)])));
  const id = await client.enqueueEval({ annotationsPath: data.split, modelDir, cacheDir: scratch('cache') });
  // The client is already waiting when Redis goes, as `bvllm eval --redis` would be.
  const outage: number[] = [];
  const result = client.wait(id, { intervalMs: 50, onUnreachable: (ms) => outage.push(ms) }).then(
    (value) => value,
    (error: unknown) => error,
  );
  const atKill = await waitFor(id, (s) => s.done >= 2 && s.running > 0);
  await redis.stop('SIGKILL');
  return { id, result, atKill, outage };
}

describe('Redis lost mid-run', () => {
  it('restarted with its data: workers and client reconnect, every result arrives, the report is unchanged', async () => {
    const dir = scratch('redis');
    const { id, result, atKill, outage } = await killMidRun({ dir });
    expect(atKill.state).toBe('running');
    expect(atKill.done).toBeLessThan(atKill.total);
    // Down for longer than a job's lock, so locks lapse and stall detection has to run after the restart.
    await new Promise((r) => setTimeout(r, 2500));
    // The follower heard of the outage while it lasted, with how long its poll had waited (not a frozen line).
    expect(outage.length).toBeGreaterThan(10);
    expect(outage.at(-1)!).toBeGreaterThan(1500);
    redis = await startLocalRedis({ port: redis!.port, dir });
    const finished = await result;
    expect(finished).toMatchObject({ kind: 'eval', failures: [] });
    expect((finished as { eval: unknown }).eval).toEqual(baseline);
    const status = await client!.status(id);
    expect({ done: status.done, failed: status.failed, running: status.running }).toEqual({ done: baseline.answers.length, failed: 0, running: 0 });
    // Nothing was answered twice into the report, and every question was answered (or reused) once.
    const { stats } = finished as { stats: { answered: number; reused: number } };
    expect(stats.answered + stats.reused).toBe(baseline.answers.length);
    expect(running.map((w) => w.exitCode)).toEqual([null, null]);
  });

  it('restarted empty (in memory only): the client fails with RunLostError, and the workers take the next run', async () => {
    const { id, result } = await killMidRun({});
    redis = await startLocalRedis({ port: redis!.port });
    const lost = await result;
    expect(lost).toBeInstanceOf(RunLostError);
    expect(lost).toMatchObject({ code: 'JOB_NOT_FOUND', runId: id, message: expect.stringContaining('vanished from Redis') });
    // The same worker processes, reconnected to the new server, run a new run through.
    const again = await client!.wait(await client!.enqueueEval({ annotationsPath: data.split, modelDir, cacheDir: scratch('cache') }), { intervalMs: 50 });
    expect(again.eval).toEqual(baseline);
    expect(running.map((w) => w.exitCode)).toEqual([null, null]);
  });
});
