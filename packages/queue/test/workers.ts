/** Test-only: worker processes of the built package, and a small synthetic split on the shipped default model. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateBenchmark } from '@bvllm/synth';

const child = fileURLToPath(new URL('./worker.child.mjs', import.meta.url));

/** Starts a worker process and resolves once it takes jobs. */
export function spawnWorker(url: string, prefix: string, lockMs = 30_000): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [child, url, prefix, String(lockMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((ready, fail) => {
    proc.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && ready(proc));
    proc.once('exit', (code, signal) => fail(new Error(`worker exited (${code ?? signal}) before it was ready`)));
  });
}

/** SIGTERM (a worker finishes its job and closes); resolves when it has exited. */
export async function stopWorker(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((done) => proc.once('exit', done));
  proc.kill('SIGTERM');
  await exited;
}

/** A `bvllm synth` test split of `videos` short videos (two questions each, MCQA and open) in a scratch folder. */
export async function tinySplit(videos: number): Promise<{ dir: string; split: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'bvllm-queue-'));
  await generateBenchmark({ outDir: dir, seed: 11, counts: { train: 0, val: 0, test: videos }, minDurationSec: 2, maxDurationSec: 3 });
  return { dir, split: join(dir, 'test.json') };
}
