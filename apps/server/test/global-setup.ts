/**
 * Builds, once per test run, a real (untrained) tiny model folder from a two-video synthetic benchmark, the way
 * the CLI's tests do, plus a media root holding one of its videos and a tiny PNG.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@bvllm/core';
import { buildTinyAssets, tinyPipelineConfig } from '@bvllm/bvllm-tiny';
import { BvllmModel, loadAssets, saveModel } from '@bvllm/pipeline';
import { generateBenchmark } from '@bvllm/synth';
import { ffmpegPath } from '@bvllm/vision-encoder';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A saved model folder (name: see its bvllm.json). */
    modelDir: string;
    /** The server's media root: `clip.mp4` (a synthetic video) and `dot.png` (16×16). */
    mediaRoot: string;
    /** A scratch folder outside the media root. */
    scratch: string;
  }
}

let dir: string;

export async function setup(project: TestProject): Promise<void> {
  await initBackend();
  dir = mkdtempSync(join(tmpdir(), 'bvllm-server-test-'));
  const data = join(dir, 'data');
  await generateBenchmark({ outDir: data, seed: 3, counts: { train: 1, val: 0, test: 1 } });
  const assets = join(dir, 'assets');
  const sizes = buildTinyAssets(data, assets, 50);
  const model = BvllmModel.create(tinyPipelineConfig(sizes), loadAssets(assets));
  const modelDir = join(dir, 'model');
  saveModel(model, modelDir, assets);
  model.dispose();
  const mediaRoot = join(dir, 'media');
  mkdirSync(mediaRoot);
  const video = (JSON.parse(readFileSync(join(data, 'test.json'), 'utf8')) as { video: string }[])[0].video;
  copyFileSync(join(data, video), join(mediaRoot, 'clip.mp4'));
  const scratch = join(dir, 'scratch');
  mkdirSync(scratch);
  copyFileSync(join(data, video), join(scratch, 'secret.mp4'));
  // A 16×16 still of the clip: the cheapest request the model accepts (one frame, no probe).
  execFileSync(ffmpegPath(), ['-loglevel', 'error', '-i', join(data, video), '-frames:v', '1', '-vf', 'scale=16:16', join(mediaRoot, 'dot.png')]);
  project.provide('modelDir', modelDir);
  project.provide('mediaRoot', mediaRoot);
  project.provide('scratch', scratch);
}

export function teardown(): void {
  rmSync(dir, { recursive: true, force: true });
}
