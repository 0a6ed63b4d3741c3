/**
 * The whole queue on real processes: one redis-server (global setup), worker processes of the built package, the
 * shipped default model, a few synthetic videos. Every run's report is compared with `evaluateSplit` in process over
 * a feature cache (patches stored as float16, as the workers' shared cache stores them), which here equals
 * `evaluateSplit` without one (float32 patches). Batches differ too: in process one batch spans the videos, on the
 * queue each video's job is its own batch; `generateBatch` answers as one by one, so the report cannot tell.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@bvllm/core';
import { defaultModelDir } from '@bvllm/bvllm-tiny';
import { InferenceSession, evaluateSplit, type EvaluateResult } from '@bvllm/pipeline';
import { Job, Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { QueueClient } from './client.js';
import { QUEUE_NAMES } from './job-types.js';
import { spawnWorker, stopWorker, tinySplit } from '../test/workers.js';

const url = inject('redisUrl');
const modelDir = defaultModelDir();
let data: { dir: string; split: string };
let baseline: EvaluateResult;
let uncached: EvaluateResult;
let client: QueueClient;
const running: ChildProcess[] = [];
let prefixes = 0;
/** Each test's own queues and answer store in the one Redis. */
const freshPrefix = () => `t${process.pid}-${prefixes++}`;
const scratch = () => mkdtempSync(join(tmpdir(), 'bvllm-queue-cache-'));

async function workers(prefix: string, n: number, lockMs?: number): Promise<ChildProcess[]> {
  const started = await Promise.all(Array.from({ length: n }, () => spawnWorker(url, prefix, lockMs)));
  running.push(...started);
  return started;
}

beforeAll(async () => {
  await initBackend();
  data = await tinySplit(3);
  // Also exports the default model's ONNX modules into the tests' cache once, before any worker needs them.
  const session = await InferenceSession.open(modelDir, { featureCacheDir: scratch() });
  baseline = await evaluateSplit(session, data.split);
  await session.close();
  const plain = await InferenceSession.open(modelDir);
  uncached = await evaluateSplit(plain, data.split);
  await plain.close();
});
afterEach(async () => {
  await Promise.all(running.splice(0).map(stopWorker));
  await client?.close();
});
afterAll(async () => {
  await Promise.all(running.splice(0).map(stopWorker));
});

describe('eval on the queue', () => {
  it.each([1, 2, 4])('with %i worker(s) reports exactly what evaluateSplit reports in process, with a feature cache or without', async (n) => {
    const prefix = freshPrefix();
    client = await QueueClient.connect(url, { prefix });
    await workers(prefix, n);
    const runId = await client.enqueueEval({ annotationsPath: data.split, modelDir, cacheDir: scratch() });
    const result = await client.wait(runId);
    expect(result.eval).toEqual(baseline);
    expect(result.eval).toEqual(uncached);
    expect(result.failures).toEqual([]);
    expect(result.stats).toEqual({ encoded: 3, cached: 0, answered: baseline.answers.length, reused: 0 });
    const status = await client.status(runId);
    expect({ done: status.done, failed: status.failed, running: status.running, total: status.total }).toEqual({ done: 6, failed: 0, running: 0, total: 6 });
    // The jobs were shared: with several workers, more than one ran some (each record names its worker process).
    const queues = [QUEUE_NAMES.extract, QUEUE_NAMES.eval].map((name) => new Queue(name, { connection: client.connection.bullmq, prefix }));
    const ranBy = new Set((await Promise.all(queues.map((q) => q.getJobs(['completed'])))).flat().map((j) => j.processedBy));
    await Promise.all(queues.map((q) => q.close()));
    expect([...ranBy].every((name) => /^.+:\d+$/.test(name ?? ''))).toBe(true);
    if (n === 1) expect(ranBy.size).toBe(1);
    else expect(ranBy.size).toBeGreaterThan(1);
  });

  it('a worker SIGKILLed mid-job: the job is retried by another worker and the report is unchanged', async () => {
    const prefix = freshPrefix();
    client = await QueueClient.connect(url, { prefix });
    // A short lock, so the dead worker's job is found stalled soon after the kill.
    const [victim] = await workers(prefix, 1, 1000);
    const runId = await client.enqueueEval({ annotationsPath: data.split, modelDir, cacheDir: scratch() });
    const queues = [QUEUE_NAMES.extract, QUEUE_NAMES.eval].map((name) => new Queue(name, { connection: client.connection.bullmq, prefix }));
    let killed: Job | undefined;
    // Freeze the worker with a job active, check the job is still active (not finished in between), then kill it.
    while (!killed) {
      const active = (await Promise.all(queues.map((q) => q.getActive()))).flat()[0];
      if (!active) {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      victim.kill('SIGSTOP');
      if ((await active.getState()) === 'active') {
        killed = active;
        victim.kill('SIGKILL');
      } else victim.kill('SIGCONT');
    }
    await workers(prefix, 1, 1000);
    const result = await client.wait(runId);
    expect(result.eval).toEqual(baseline);
    expect(result.failures).toEqual([]);
    const after = (await Job.fromId(queues.find((q) => q.name === killed!.queueName)!, killed.id!))!;
    expect(after.stalledCounter).toBeGreaterThanOrEqual(1);
    expect(await after.getState()).toBe('completed');
    await Promise.all(queues.map((q) => q.close()));
  });

  it('a corrupt video fails its questions with its error code, the rest complete, and a re-run skips what is done', async () => {
    const prefix = freshPrefix();
    client = await QueueClient.connect(url, { prefix });
    // The split with one more video, whose bytes are not a video at all, among the others.
    const entries = JSON.parse(readFileSync(data.split, 'utf8')) as unknown[];
    writeFileSync(join(data.dir, 'garbage.mp4'), Buffer.alloc(4096, 7));
    const garbage = { id: 'garbage-0', video: 'garbage.mp4', conversations: [{ from: 'human', value: '<video>\nWhat shape?' }, { from: 'gpt', value: 'circle' }] };
    const split = join(data.dir, 'with-garbage.json');
    writeFileSync(split, JSON.stringify([...entries.slice(0, 2), garbage, ...entries.slice(2)]));
    const cacheDir = scratch();
    await workers(prefix, 1);
    const first = await client.wait(await client.enqueueEval({ annotationsPath: split, modelDir, cacheDir }));
    expect(first.failures).toEqual([{ video: 'garbage.mp4', questions: ['garbage-0'], code: 'MEDIA_UNSUPPORTED', message: expect.stringContaining('garbage.mp4') }]);
    expect(first.eval).toEqual(baseline);

    const again = await client.wait(await client.enqueueEval({ annotationsPath: split, modelDir, cacheDir }));
    expect(again.eval).toEqual(baseline);
    expect(again.stats).toEqual({ encoded: 0, cached: 3, answered: 0, reused: baseline.answers.length });
    expect(again.failures.map((f) => f.code)).toEqual(['MEDIA_UNSUPPORTED']);
  });
});

describe('extract on the queue', () => {
  it('encodes each video once into the shared cache; a second run finds them all there', async () => {
    const prefix = freshPrefix();
    client = await QueueClient.connect(url, { prefix });
    await workers(prefix, 2);
    const videos = [...new Set((JSON.parse(readFileSync(data.split, 'utf8')) as { video: string }[]).map((e) => join(data.dir, e.video)))];
    const cacheDir = scratch();
    const first = await client.wait(await client.enqueueExtract({ videos, modelDir, cacheDir }));
    expect(first.videos!.map((v) => [v.video, v.cached])).toEqual(videos.map((v) => [v, false]));
    const second = await client.wait(await client.enqueueExtract({ videos, modelDir, cacheDir }));
    expect(second.videos!.map((v) => [v.video, v.cached, v.frames])).toEqual(first.videos!.map((v) => [v.video, true, v.frames]));
    expect(second.stats).toEqual({ encoded: 0, cached: videos.length, answered: 0, reused: 0 });
  });

  it('an unknown run id is JOB_NOT_FOUND', async () => {
    client = await QueueClient.connect(url, { prefix: freshPrefix() });
    await expect(client.status('no-such-run')).rejects.toMatchObject({ code: 'JOB_NOT_FOUND' });
  });
});
