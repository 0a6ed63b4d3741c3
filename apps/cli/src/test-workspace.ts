/** Test-only: a scratch folder with a tiny synthetic benchmark and a real (untrained) model built from it. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@bvllm/core';
import { buildTinyAssets, tinyPipelineConfig } from '@bvllm/bvllm-tiny';
import { BvllmModel, loadAssets, saveModel } from '@bvllm/pipeline';
import { generateBenchmark } from '@bvllm/synth';

/** The built bin, run as users run it (the package's test script builds it first). */
const bin = fileURLToPath(new URL('../dist/bvllm.js', import.meta.url));

/**
 * Runs the CLI to its end (killed after `timeoutMs`). Asynchronous: a synchronous spawn blocks vitest's worker for
 * the whole run, and under load the worker then misses its own RPC ("Timeout calling onTaskUpdate").
 */
export function bvllm(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface TestWorkspace {
  dir: string;
  /** A `bvllm synth` folder: `train`-many training and `test`-many test questions, each in both forms. */
  data: string;
  modelDir: string;
  /** The first test video. */
  video: string;
}

/** The recipe's own steps (tokenizers from the benchmark, the tiny config), without training. */
export async function testWorkspace(counts: { train: number; test: number }): Promise<TestWorkspace> {
  await initBackend();
  const dir = mkdtempSync(join(tmpdir(), 'bvllm-cli-'));
  const data = join(dir, 'data');
  await generateBenchmark({ outDir: data, seed: 3, counts: { ...counts, val: 0 } });
  const assets = join(dir, 'assets');
  const model = BvllmModel.create(tinyPipelineConfig(buildTinyAssets(data, assets, 50)), loadAssets(assets));
  const modelDir = join(dir, 'model');
  saveModel(model, modelDir, assets);
  model.dispose();
  const video = join(data, (JSON.parse(readFileSync(join(data, 'test.json'), 'utf8')) as { video: string }[])[0].video);
  return { dir, data, modelDir, video };
}
