import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortedError, CheckpointFormatError, Rng, initBackend, tf } from '@bvllm/core';
import { BvllmModel } from '@bvllm/pipeline';
import { parseSynthConfig } from '@bvllm/synth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mixedBatches, poolBatches, renderedBatches } from './pretrain-batches.js';
import { testAssets, testConfig } from './test-model.js';
import { pretrainVision } from './vision-pretrain.js';

let root: string;
let pixels: tf.Tensor4D;

beforeAll(async () => {
  await initBackend();
  root = mkdtempSync(join(tmpdir(), 'bvllm-steps-'));
  pixels = tf.tidy(() => Rng.fromSeed(3).normal([6, 32, 32, 3]) as tf.Tensor4D);
});

afterAll(() => {
  pixels.dispose();
  rmSync(root, { recursive: true, force: true });
});

/** The tower's pre-training on decoded and freshly rendered frames (the rendered source has a position to restore). */
async function pretrain(run: Parameters<typeof pretrainVision>[2]['run']): Promise<{ losses: number[]; weights: Float32Array[] }> {
  const model = BvllmModel.create(testConfig(), testAssets(), 1);
  const settings = parseSynthConfig({ outDir: '/nonexistent', seed: 3, size: 32, counts: { train: 4, val: 0, test: 0 } });
  const batches = mixedBatches([poolBatches(pixels), renderedBatches(settings, 32, 2, 4)]);
  try {
    const losses = await pretrainVision(model.vision, batches, { steps: 5, batchSize: 4, lr: 3e-3, seed: 0, run });
    return { losses, weights: [...model.vision.variables().values()].map((v) => v.dataSync() as Float32Array) };
  } finally {
    model.dispose();
  }
}

describe('runSteps (the pre-training phases)', () => {
  it('stopped at a step and resumed in a fresh model, ends with the losses and weights of one straight run, bit for bit', async () => {
    const straight = await pretrain({});
    const dir = join(root, 'vision');
    await expect(pretrain({ dir, checkpointEvery: 2, stopAtStep: 3 })).rejects.toThrow(AbortedError);
    // The checkpoint of the stop, and only the newest one.
    expect(readdirSync(dir)).toEqual(['step-00000003']);
    const resumed = await pretrain({ dir, checkpointEvery: 2, resume: true });
    expect(resumed.losses).toEqual(straight.losses);
    resumed.weights.forEach((w, i) => expect(Buffer.from(w.buffer).equals(Buffer.from(straight.weights[i].buffer))).toBe(true));
    // A finished phase resumed again only reloads its weights.
    const again = await pretrain({ dir, checkpointEvery: 2, resume: true });
    expect(again.losses).toEqual(straight.losses);
  });

  it('draws a progress bar with the phase name, its step count and an ETA', async () => {
    const lines: string[] = [];
    await pretrain({ progress: { write: (t) => lines.push(t) }, label: 'vision pre-training' });
    expect(lines.at(-1)).toMatch(/^vision pre-training \[#{20}\] 5\/5 loss [\d.]+ lr [\d.e-]+ [\d.]+ samples\/s ETA 00:00:00\n$/);
  });

  it('saves a checkpoint and throws AbortedError when its signal is aborted', async () => {
    const dir = join(root, 'aborted');
    const controller = new AbortController();
    controller.abort();
    await expect(pretrain({ dir, signal: controller.signal })).rejects.toThrow(AbortedError);
    expect(readdirSync(dir)).toEqual(['step-00000000']);
  });

  it('refuses a damaged checkpoint with a CheckpointFormatError naming its file', async () => {
    const dir = join(root, 'damaged');
    await expect(pretrain({ dir, stopAtStep: 2 })).rejects.toThrow(AbortedError);
    writeFileSync(join(dir, 'step-00000002', 'state.json'), '{"step": 2');
    await expect(pretrain({ dir, resume: true })).rejects.toThrow(CheckpointFormatError);
    writeFileSync(join(dir, 'step-00000002', 'state.json'), JSON.stringify({ step: 2, steps: 5, optimizerStep: 2, rng: { seed: 1, stream: 0, counter: 0 }, position: [], losses: [1] }));
    await expect(pretrain({ dir, resume: true })).rejects.toThrow(/step-00000002\/state.json.*not a pre-training phase checkpoint/);
  });
});
