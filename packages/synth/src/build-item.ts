/**
 * One benchmark item (a video, its scene and its question) as a pure function of the config, the split and the
 * index: every item draws from its own fork of the seed, so changing `counts` never changes the items kept.
 */
import { Rng } from '@bvllm/core';
import { LONG_DURATIONS_SEC, type QuestionForm, type SynthConfig, type TaskName } from './config.js';
import { mcqaPrompt, VIDEO_TAG } from './prompts.js';
import { generateQuestion, type GeneratedQuestion } from './questions/generate-question.js';
import type { BenchmarkSample } from './sample-schema.js';
import type { Scene } from './scene.js';

export const SPLITS = ['train', 'val', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];

/** Dark grey rather than black, so the encoder's black level never clips and every palette colour stands out. */
const BACKGROUND: readonly [number, number, number] = [24, 24, 24];

export interface SynthItem {
  /** `<split>-<index>`, zero-padded. */
  id: string;
  split: SplitName;
  index: number;
  /** `videos/<id>.mp4`, relative to the benchmark folder. */
  video: string;
  scene: Scene;
  question: Omit<GeneratedQuestion, 'objects'>;
}

export function buildItem(config: SynthConfig, split: SplitName, index: number): SynthItem {
  const rng = Rng.fromSeed(config.seed).fork(split).fork(String(index));
  // Round-robin gives every family the same share of each split.
  const task: TaskName = config.tasks[index % config.tasks.length];
  const durationSec = config.long
    ? LONG_DURATIONS_SEC[index % LONG_DURATIONS_SEC.length]
    : config.minDurationSec + rng.fork('duration').int(config.maxDurationSec - config.minDurationSec + 1);
  const numFrames = durationSec * config.fps;
  const { objects, ...question } = generateQuestion(task, rng.fork('question'), {
    size: config.size,
    fps: config.fps,
    numFrames,
    durationSec,
    shapes: config.shapes,
    colours: config.colours,
    briefMinSec: config.briefMinSec,
    briefMaxSec: config.briefMaxSec,
    uniformProbeFrames: config.uniformProbeFrames,
  });
  const id = `${split}-${String(index).padStart(5, '0')}`;
  return {
    id,
    split,
    index,
    video: `videos/${id}.mp4`,
    scene: { size: config.size, fps: config.fps, durationSec, numFrames, background: BACKGROUND, objects },
    question,
  };
}

/** The item's samples, one per configured form, in the order of `config.forms`. */
export function itemSamples(item: SynthItem, config: SynthConfig): BenchmarkSample[] {
  const q = item.question;
  return config.forms.map((form: QuestionForm) => {
    const mcqa = form === 'mcqa';
    const human = mcqa ? mcqaPrompt(q.question, q.options, config.mcqaPrompt) : q.question;
    const answer = mcqa ? q.answerLetter : q.answer;
    return {
      id: `${item.id}-${form}`,
      video: item.video,
      conversations: [
        { from: 'human' as const, value: VIDEO_TAG + human },
        { from: 'gpt' as const, value: answer },
      ],
      task: q.task,
      form,
      question: q.question,
      ...(mcqa ? { options: q.options } : {}),
      answer,
      answerText: q.answer,
      durationSec: item.scene.durationSec,
      ...(q.eventSec ? { eventSec: q.eventSec } : {}),
    } satisfies BenchmarkSample;
  });
}
