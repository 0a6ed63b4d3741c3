import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@bvllm/core';
import { generateBenchmark } from '@bvllm/synth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../model-dir.js';
import { trainTinyModel } from './tiny-recipe.js';

let root: string;

beforeAll(async () => {
  await initBackend();
  root = mkdtempSync(join(tmpdir(), 'bvllm-recipe-'));
  await generateBenchmark({ outDir: join(root, 'data'), seed: 4, counts: { train: 5, val: 0, test: 1 } });
}, 120_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the tiny recipe, end to end at toy budgets', () => {
  it('runs every step (the LLM warm-up reading captions, then label tokens, in place of the video) and writes a model folder that loads', async () => {
    const lines: string[] = [];
    const options = { dataDir: join(root, 'data'), workDir: join(root, 'work'), seed: 0, visionSteps: 2, samplerSteps: 2, alignSteps: 2, pretrainVideos: 2, lmEpochs: 1, labelEpochs: 1, stage1Epochs: 1, stage2Epochs: 1, progress: { write: () => true } };
    const model = await trainTinyModel({ ...options, outDir: join(root, 'model'), log: (line) => lines.push(line) });
    model.dispose();
    for (const step of ['vision pre-training', 'LLM warm-up, captions', 'LLM warm-up, label tokens', 'spatial Q-Former pre-training', 'alignment with the label tokens', 'stage 1', 'stage 2']) expect(lines.some((l) => l.startsWith(step))).toBe(true);
    // Captions are only ever read for training videos (the test video's scene stays unseen).
    const captions = JSON.parse(readFileSync(join(root, 'work', 'captions.json'), 'utf8')) as { video: string }[];
    expect(captions.map((c) => c.video).sort()).toEqual([0, 1, 2, 3, 4].map((i) => `videos/train-0000${i}.mp4`));
    const loaded = loadModel(join(root, 'model'));
    expect(loaded.config.name).toBe('bvllm-tiny');
    expect(loaded.lora).toBeDefined();
    loaded.dispose();

    // An ablation run reuses the base (tower + LLM) and swaps a stage by kind.
    const ablated = await trainTinyModel({ ...options, workDir: join(root, 'ablation'), outDir: join(root, 'uniform'), base: join(root, 'work', 'base'), overrides: { frameSelect: { kind: 'uniform', numFrames: 4 } } });
    expect(ablated.frameSelect.kind).toBe('uniform');
    ablated.dispose();
  }, 300_000);
});
