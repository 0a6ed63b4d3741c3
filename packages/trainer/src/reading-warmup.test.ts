import { DatasetError } from './dataset-error.js';
import type { InstructSample } from './instruct-dataset.js';
import { IGNORE_INDEX, VIDEO_TOKEN_INDEX } from './preprocess.js';
import type { TrainDataset } from './trainable-model.js';
import { describe, expect, it } from 'vitest';
import { CaptionInContextDataset, ConcatDataset } from './reading-warmup.js';

const sample = (id: string, mediaPath: string | undefined, inputIds: number[], labels: number[]): InstructSample => ({
  id,
  modality: mediaPath ? 'video' : 'text',
  mediaPath,
  inputIds,
  labels,
  question: 'What colour is the square?',
});
const listDataset = (samples: InstructSample[]): TrainDataset<InstructSample> => ({ length: samples.length, get: (i) => samples[i], idOf: (i) => samples[i].id });

describe('CaptionInContextDataset (the LLM warm-up reads the caption where the visual tokens will be)', () => {
  const captions = new Map([['/d/videos/a.mp4', [40, 41, 42]]]);

  it('replaces the placeholder by the caption, unsupervised, and keeps every other id and label in place', () => {
    // A stage-2 layout: prompt (masked), placeholder (masked), question (masked), answer (supervised).
    const inner = listDataset([sample('a-open', '/d/videos/a.mp4', [1, 2, VIDEO_TOKEN_INDEX, 3, 4, 5], [-100, -100, -100, -100, -100, 5])]);
    const read = new CaptionInContextDataset(inner, captions).get(0);
    expect(read.inputIds).toEqual([1, 2, 40, 41, 42, 3, 4, 5]);
    expect(read.labels).toEqual([-100, -100, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, -100, -100, 5]);
    // It is text now: the collate step must not look for frame features, and the Q-Formers read nothing.
    expect(read.modality).toBe('text');
    expect(read.mediaPath).toBeUndefined();
    expect(read.question).toBe('');
    expect(read.id).toBe('a-open');
  });

  it('keeps the plain (stage-1) layout: everything after the caption stays supervised', () => {
    const inner = listDataset([sample('a-cap', '/d/videos/a.mp4', [VIDEO_TOKEN_INDEX, 7, 8], [-100, 7, 8])]);
    expect(new CaptionInContextDataset(inner, captions).get(0)).toMatchObject({ inputIds: [40, 41, 42, 7, 8], labels: [-100, -100, -100, 7, 8] });
  });

  it('refuses a sample whose video has no caption or that holds no placeholder, with the sample named', () => {
    const inner = listDataset([sample('b', '/d/videos/b.mp4', [VIDEO_TOKEN_INDEX, 1], [-100, 1]), sample('c', '/d/videos/a.mp4', [1, 2], [1, 2]), sample('t', undefined, [1], [1])]);
    const read = new CaptionInContextDataset(inner, captions);
    expect(() => read.get(0)).toThrow(DatasetError);
    expect(() => read.get(0)).toThrow(/b\.mp4/);
    expect(() => read.get(1)).toThrow(/placeholder/);
    expect(() => read.get(2)).toThrow(DatasetError);
  });
});

describe('ConcatDataset', () => {
  it('indexes its parts end to end, ids included, and refuses an index past the end', () => {
    const a = listDataset([sample('a0', undefined, [1], [1]), sample('a1', undefined, [2], [2])]);
    const b = listDataset([sample('b0', undefined, [3], [3])]);
    const both = new ConcatDataset([a, b]);
    expect(both.length).toBe(3);
    expect([0, 1, 2].map((i) => both.get(i).inputIds[0])).toEqual([1, 2, 3]);
    expect([0, 1, 2].map((i) => both.idOf(i))).toEqual(['a0', 'a1', 'b0']);
    expect(() => both.get(3)).toThrow(RangeError);
  });
});
