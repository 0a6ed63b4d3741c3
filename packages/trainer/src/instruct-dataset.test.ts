import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BvllmError, ParameterStore, Rng, initBackend, tf } from '@bvllm/core';
import { collateInstruct, type InstructBatch } from './collate.js';
import { DatasetError } from './dataset-error.js';
import { InstructDataset, type InstructSample } from './instruct-dataset.js';
import { IGNORE_INDEX, VIDEO_TOKEN_INDEX, type ChatRenderer } from './preprocess.js';
import { train } from './train-loop.js';
import type { TrainableModel } from './trainable-model.js';

const charTokenizer = { encode: (text: string) => Array.from(text, (c) => c.charCodeAt(0)) };
const chat: ChatRenderer = {
  render: (messages, options = {}) =>
    messages.map((m) => `<${m.role}>${m.content}</>`).join('') + (options.addGenerationPrompt ? '<assistant>' : ''),
};

function fixture(): { annotations: string; folder: string } {
  const root = mkdtempSync(join(tmpdir(), 'bvllm-data-'));
  const folder = join(root, 'media');
  mkdirSync(join(folder, 'videos'), { recursive: true });
  writeFileSync(join(folder, 'videos', 'a.mp4'), 'not decoded here');
  writeFileSync(join(folder, 'cat.jpg'), 'x');
  const entries = [
    { id: 'good-video', video: 'videos/a.mp4', conversations: [{ from: 'human', value: 'Why?\n<video>' }, { from: 'gpt', value: 'Rain.' }] },
    { id: 'missing-media', video: 'videos/nope.mp4', conversations: [{ from: 'human', value: '<video>q' }, { from: 'gpt', value: 'a' }] },
    { id: 'no-conversations', video: 'videos/a.mp4' },
    { id: 'too-long', image: 'cat.jpg', conversations: [{ from: 'human', value: '<image>' }, { from: 'gpt', value: 'x'.repeat(200) }] },
    { id: 7, image: 'cat.jpg', conversations: [{ from: 'human', value: '<image>\nColour?' }, { from: 'gpt', value: 'Grey.' }], extra: 1 },
    { id: 'text-only', conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Hello.' }] },
    'not an object',
  ];
  const annotations = join(root, 'train.json');
  writeFileSync(annotations, JSON.stringify(entries));
  return { annotations, folder };
}

beforeAll(async () => {
  await initBackend();
});

describe('InstructDataset (VideoLLaMA2/LLaVA JSON, spec §2)', () => {
  const { annotations, folder } = fixture();
  const chatSet = InstructDataset.fromFile(annotations, { folder, tokenizer: charTokenizer, format: 'chat', chat, modelMaxLength: 100 });
  const plainSet = InstructDataset.fromFile(annotations, { folder, tokenizer: charTokenizer, format: 'plain', modelMaxLength: 100 });

  it('reads a video sample: absolute media path, question without the tag, tag moved to the front', () => {
    const s = plainSet.get(0);
    expect(s).toMatchObject({ id: 'good-video', modality: 'video', mediaPath: join(folder, 'videos/a.mp4'), question: 'Why?' });
    expect(s.inputIds).toEqual([VIDEO_TOKEN_INDEX, ...charTokenizer.encode('\nWhy? Rain.')]);
    expect(chatSet.get(4)).toMatchObject({ id: '7', modality: 'image', question: 'Colour?' });
  });

  it('reads a text-only sample in the chat format (question "")', () => {
    const s = chatSet.get(5);
    expect(s.modality).toBe('text');
    expect(s.question).toBe('');
    expect(s.mediaPath).toBeUndefined();
    const prompt = '<user>Hi</><assistant>';
    expect(s.labels).toEqual([...Array.from(prompt, () => IGNORE_INDEX), ...charTokenizer.encode('Hello.</>')]);
  });

  it('throws a DatasetError naming the sample for a missing file, a malformed entry and an over-long sample', () => {
    const reasons = [1, 2, 3, 6].map((i) => {
      try {
        chatSet.get(i);
        return 'no error';
      } catch (e) {
        expect(e).toBeInstanceOf(DatasetError);
        return (e as Error).message;
      }
    });
    expect(reasons[0]).toMatch(/^sample missing-media: missing media file .*nope\.mp4$/);
    expect(reasons[1]).toMatch(/^sample no-conversations: malformed entry: conversations/);
    expect(reasons[2]).toMatch(/^sample too-long: too long: \d+ tokens, modelMaxLength is 100$/);
    expect(reasons[3]).toMatch(/^sample #6: malformed entry/);
    expect(() => plainSet.get(5)).toThrow(/needs a video or image sample/);
  });

  it('fails as a whole only when the file is not a JSON list', () => {
    const bad = join(mkdtempSync(join(tmpdir(), 'bvllm-data-')), 'x.json');
    writeFileSync(bad, '{"id": 1}');
    expect(() => InstructDataset.fromFile(bad, { folder, tokenizer: charTokenizer, format: 'plain', modelMaxLength: 9 })).toThrow(BvllmError);
  });

  /** A real unigram language model: one trainable logit per character code, cross-entropy on supervised labels. */
  class UnigramLm implements TrainableModel<InstructBatch> {
    readonly store = new ParameterStore('unigram', Rng.fromSeed(0));
    constructor() {
      this.store.create('logits', [128], { kind: 'zeros' });
      this.store.create('frozen.scale', [1], { kind: 'ones' });
    }
    trainable() {
      return (key: string) => key === 'logits';
    }
    loss(batch: InstructBatch) {
      return tf.tidy(() => {
        const labels = tf.reshape(batch.labels, [-1]);
        const keep = tf.greaterEqual(labels, 0);
        const logProbs = tf.logSoftmax(tf.mul(this.store.get('logits'), this.store.get('frozen.scale')));
        // One-hot rather than gather: gather's gradient kernel is missing on WASM.
        const picked = tf.sum(tf.mul(tf.oneHot(tf.maximum(labels, tf.scalar(0, 'int32')), 128), logProbs), 1);
        const count = tf.sum(tf.cast(keep, 'float32'));
        return tf.neg(tf.div(tf.sum(tf.where(keep, picked, tf.zerosLike(picked))), count)) as tf.Scalar;
      });
    }
  }

  it('trains through bad samples: the run finishes, each bad sample is counted and logged with its id', async () => {
    const model = new UnigramLm();
    const outDir = mkdtempSync(join(tmpdir(), 'bvllm-run-'));
    const result = await train<InstructSample, InstructBatch>({
      model,
      dataset: chatSet,
      collate: (s) => collateInstruct(s, 0),
      config: {
        stage: 'stage2', seed: 42, epochs: 2, lr: 0.1, schedule: 'cosine', warmupRatio: 0, weightDecay: 0,
        adamBeta1: 0.9, adamBeta2: 0.999, adamEps: 1e-8, maxGradNorm: 1, microBatchSize: 2, gradientAccumulationSteps: 1,
        checkpointEvery: 100, logEvery: 1,
      },
      outDir,
      progress: { isTTY: false, write: () => true },
    });
    expect(result.step).toBe(8); // ceil(7 / 2) = 4 micro-batches per epoch, 2 epochs
    expect(result.skipped).toBe(8); // 4 bad entries × 2 epochs
    const ids = readFileSync(join(outDir, 'skipped.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).id);
    expect(new Set(ids)).toEqual(new Set(['missing-media', 'no-conversations', 'too-long', '#6']));
    expect(result.lossHistory.filter(Number.isFinite).length).toBeGreaterThan(0);
    expect(model.store.get('frozen.scale').dataSync()[0]).toBe(1);
    model.store.dispose();
  });
});

describe('collateInstruct', () => {
  const sample = (id: string, inputIds: number[], labels: number[]): InstructSample => ({ id, modality: 'video', inputIds, labels, question: 'q' });
  const samples = [sample('a', [VIDEO_TOKEN_INDEX, 5, 6], [IGNORE_INDEX, 5, 6]), sample('b', [7], [7])];

  it('pads on the right: ids with the pad id, labels with −100, mask 1 on real tokens', () => {
    const batch = collateInstruct(samples, 0);
    expect(batch.inputIds.arraySync()).toEqual([
      [VIDEO_TOKEN_INDEX, 5, 6],
      [7, 0, 0],
    ]);
    expect(batch.labels.arraySync()).toEqual([
      [IGNORE_INDEX, 5, 6],
      [7, IGNORE_INDEX, IGNORE_INDEX],
    ]);
    expect(batch.attentionMask.arraySync()).toEqual([
      [1, 1, 1],
      [1, 0, 0],
    ]);
    expect(batch.lengths).toEqual([3, 1]);
    expect(batch.samples.map((s) => s.id)).toEqual(['a', 'b']);
    tf.dispose(batch as unknown as tf.TensorContainer);
  });

  it('keeps a real token equal to the pad id visible in the mask', () => {
    const batch = collateInstruct([sample('c', [0, 3], [0, 3])], 0);
    expect(batch.attentionMask.arraySync()).toEqual([[1, 1]]);
    tf.dispose(batch as unknown as tf.TensorContainer);
  });

  it('leaves no tensors behind once the batch is disposed', () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) tf.dispose(collateInstruct(samples, 0) as unknown as tf.TensorContainer);
    expect(tf.memory().numTensors).toBe(before);
  });
});
