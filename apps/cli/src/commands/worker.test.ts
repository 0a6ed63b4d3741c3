import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalRedis, type LocalRedis } from '@bvllm/queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bvllm, testWorkspace, type TestWorkspace } from '../test-workspace.js';

let ws: TestWorkspace;
let redis: LocalRedis;
let worker: ChildProcess;

/** `bvllm worker` as a deployment starts it (the model opened at start, one onnxruntime thread); resolves once it takes jobs. */
function startWorker(url: string, modelDir: string): Promise<ChildProcess> {
  const bin = fileURLToPath(new URL('../../dist/bvllm.js', import.meta.url));
  const child = spawn(process.execPath, [bin, 'worker', '--redis', url, '--model', modelDir, '--threads', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  return new Promise((ready, fail) => {
    child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()).includes('worker ready') && ready(child));
    child.once('exit', (code) => fail(new Error(`worker exited with ${code}: ${log}`)));
  });
}

/** Each report file of an `--out` folder, by name. */
const reports = (dir: string) => Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), 'utf8')]));

beforeAll(async () => {
  ws = await testWorkspace({ train: 1, test: 2 });
  redis = await startLocalRedis();
  worker = await startWorker(redis.url, ws.modelDir);
}, 120_000);
afterAll(async () => {
  const exited = new Promise((done) => worker.once('exit', done));
  worker.kill('SIGTERM');
  await exited;
  await redis.stop();
});

describe('bvllm eval --redis and bvllm worker', () => {
  const split = () => join(ws.data, 'test.json');
  const flags = () => ['--model', ws.modelDir, '--max-new-tokens', '3'];

  it('prints and writes the report `bvllm eval` writes in process over a feature cache', { timeout: 120_000 }, async () => {
    const local = await bvllm(['eval', '--data', split(), ...flags(), '--cache', mkdtempSync(join(ws.dir, 'c-')), '--out', join(ws.dir, 'local')]);
    expect(local.code).toBe(0);
    const queued = await bvllm(['eval', '--data', split(), ...flags(), '--cache', mkdtempSync(join(ws.dir, 'c-')), '--out', join(ws.dir, 'queued'), '--redis', redis.url]);
    expect(queued.stderr).toMatch(/eval 4\/4 done, 0 running, 0 failed, completed/);
    expect(queued.code).toBe(0);
    expect(queued.stdout).toBe(local.stdout);
    expect(reports(join(ws.dir, 'queued'))).toEqual(reports(join(ws.dir, 'local')));
  });

  it('--detach prints a run id that `bvllm jobs status` follows to the same result', { timeout: 120_000 }, async () => {
    const cache = mkdtempSync(join(ws.dir, 'c-'));
    const detached = await bvllm(['eval', '--data', split(), ...flags(), '--cache', cache, '--redis', redis.url, '--detach']);
    expect(detached.code).toBe(0);
    const id = detached.stdout.trim();
    expect(detached.stderr).toContain(`bvllm jobs status ${id} --redis ${redis.url}`);
    let status = await bvllm(['jobs', 'status', id, '--redis', redis.url]);
    while (status.code === 0 && !status.stdout.includes('completed')) {
      await new Promise((r) => setTimeout(r, 200));
      status = await bvllm(['jobs', 'status', id, '--redis', redis.url]);
    }
    const waited = await bvllm(['eval', '--data', split(), ...flags(), '--cache', cache, '--redis', redis.url]);
    expect(status.stdout.split('\n').slice(1).join('\n')).toBe(waited.stdout);
  });

  it('extract --redis encodes every video of the folder into the shared cache; a second run encodes none', { timeout: 120_000 }, async () => {
    const cache = mkdtempSync(join(ws.dir, 'c-'));
    const n = readdirSync(join(ws.data, 'videos')).length;
    const extracted = await bvllm(['extract', join(ws.data, 'videos'), '--cache', cache, '--model', ws.modelDir, '--redis', redis.url]);
    expect(extracted.code).toBe(0);
    expect(extracted.stdout).toBe(`${n} videos, ${n} newly encoded\n`);
    expect((await bvllm(['extract', join(ws.data, 'videos'), '--cache', cache, '--model', ws.modelDir, '--redis', redis.url])).stdout).toBe(`${n} videos, 0 newly encoded\n`);
  });

  it('a Redis that is down, and an unknown run id, are one-line typed errors', async () => {
    const down = await bvllm(['eval', '--data', split(), '--cache', ws.dir, '--redis', 'redis://127.0.0.1:1']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^bvllm: error REDIS_UNAVAILABLE: Redis at redis:\/\/127\.0\.0\.1:1 is unavailable/);
    const noCache = await bvllm(['eval', '--data', split(), '--redis', redis.url]);
    expect(noCache.stderr).toMatch(/^bvllm: error INVALID_ARGUMENT: --cache: needed with --redis/);
    const unknown = await bvllm(['jobs', 'status', 'no-such-run', '--redis', redis.url]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^bvllm: error JOB_NOT_FOUND: no job no-such-run/);
  });
});
