import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortedError, BvllmError, initBackend } from '@bvllm/core';
import { loadModel } from '@bvllm/pipeline';
import { generateBenchmark } from '@bvllm/synth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VocabularyMismatchError } from './tiny-assets.js';
import { trainTinyModel, type TinyRecipeOptions } from './tiny-recipe.js';

let root: string;
const quiet = { write: () => true };

/** Toy budgets: every phase runs at least two updates, each checkpointed. */
const toy = { seed: 0, visionSteps: 3, samplerSteps: 2, alignSteps: 3, pretrainVideos: 2, lmEpochs: 1, labelEpochs: 1, stage1Epochs: 1, stage2Epochs: 1, checkpointEvery: 1, progress: quiet };

const run = async (options: Omit<TinyRecipeOptions, 'seed'>) => {
  const model = await trainTinyModel({ ...toy, ...options });
  model.dispose();
};

beforeAll(async () => {
  await initBackend();
  root = mkdtempSync(join(tmpdir(), 'bvllm-recipe-'));
  await generateBenchmark({ outDir: join(root, 'data'), seed: 4, counts: { train: 3, val: 0, test: 1 } });
  await generateBenchmark({ outDir: join(root, 'other'), seed: 9, counts: { train: 2, val: 0, test: 1 } });
}, 120_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the tiny recipe, end to end at toy budgets', () => {
  it('runs every phase, writes a model folder that loads, and reads captions of training videos only', async () => {
    const lines: string[] = [];
    await run({ dataDir: join(root, 'data'), workDir: join(root, 'work'), outDir: join(root, 'model'), log: (line) => lines.push(line) });
    for (const phase of ['vision pre-training', 'LLM warm-up, captions', 'LLM warm-up, label tokens', 'spatial Q-Former pre-training', 'alignment with the label tokens', 'stage 1', 'stage 2'])
      expect(lines.some((l) => l.startsWith(`${phase}: loss`))).toBe(true);
    const captions = JSON.parse(readFileSync(join(root, 'work', 'captions.json'), 'utf8')) as { video: string }[];
    expect(captions.map((c) => c.video).sort()).toEqual([0, 1, 2].map((i) => `videos/train-0000${i}.mp4`));
    const loaded = loadModel(join(root, 'model'));
    expect(loaded.config.name).toBe('bvllm-tiny');
    expect(loaded.lora).toBeDefined();
    loaded.dispose();
  }, 300_000);

  it('interrupted in three phases and resumed each time, ends with the weights of the uninterrupted run, bit for bit', async () => {
    const options = { dataDir: join(root, 'data'), workDir: join(root, 'interrupted'), outDir: join(root, 'resumed-model') };
    const stops = [
      { phase: 'vision', step: 1 },
      { phase: 'lm-labels', step: 1 },
      { phase: 'align', step: 2 },
      { phase: 'stage2', step: 1 },
    ] as const;
    await expect(run({ ...options, stopAt: stops[0] })).rejects.toThrow(AbortedError);
    for (const stopAt of stops.slice(1)) await expect(run({ ...options, resume: true, stopAt })).rejects.toThrow(AbortedError);
    await run({ ...options, resume: true });
    const weights = (dir: string) => readFileSync(join(dir, 'model.safetensors'));
    expect(weights(join(root, 'resumed-model')).equals(weights(join(root, 'model')))).toBe(true);
  }, 300_000);

  it('refuses to start over a work folder that holds a run, and to resume it with other settings', async () => {
    const options = { dataDir: join(root, 'data'), workDir: join(root, 'work'), outDir: join(root, 'again') };
    await expect(run(options)).rejects.toThrow(/holds an earlier run/);
    await expect(run({ ...options, resume: true, alignSteps: 5 })).rejects.toThrow(/a resume must be the same run/);
  });

  it('on a base and other data, keeps the base tokenizers (token ids unchanged) and runs only the later phases', async () => {
    const base = join(root, 'work', 'base');
    const lines: string[] = [];
    await run({ dataDir: join(root, 'other'), workDir: join(root, 'on-base'), outDir: join(root, 'on-base-model'), base, log: (line) => lines.push(line) });
    for (const file of ['tokenizer.json', 'tokenizer_config.json', 'question_tokenizer/vocab.txt'])
      expect(readFileSync(join(root, 'on-base-model', file), 'utf8')).toBe(readFileSync(join(base, file), 'utf8'));
    const vocab = (dir: string) => (JSON.parse(readFileSync(join(dir, 'bvllm.json'), 'utf8')) as { llm: { vocabSize: number } }).llm.vocabSize;
    expect(vocab(join(root, 'on-base-model'))).toBe(vocab(base));
    expect(lines.some((l) => l.startsWith('vision pre-training'))).toBe(false);
    expect(lines.some((l) => l.startsWith('LLM warm-up'))).toBe(false);
    expect(lines.some((l) => l.startsWith('stage 2: loss'))).toBe(true);
  }, 300_000);

  it('refuses data whose questions need words the base vocabulary lacks, with a typed error naming them', async () => {
    const data = join(root, 'new-words');
    mkdirSync(data);
    for (const file of ['val.json', 'test.json', 'scenes.json', 'meta.json']) cpSync(join(root, 'other', file), join(data, file));
    const train = JSON.parse(readFileSync(join(root, 'other', 'train.json'), 'utf8')) as { conversations: { from: string; value: string }[] }[];
    train[0].conversations[0].value = '<video>\nWhich zebra crossed the frame?';
    writeFileSync(join(data, 'train.json'), JSON.stringify(train));
    const error = await run({ dataDir: data, workDir: join(root, 'refused'), outDir: join(root, 'refused-model'), base: join(root, 'work', 'base') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VocabularyMismatchError);
    expect(BvllmError.isInstance(error) && error.code).toBe('VOCABULARY_MISMATCH');
    expect((error as VocabularyMismatchError).missing).toEqual(['zebra', 'crossed', 'frame']);
  });
});
