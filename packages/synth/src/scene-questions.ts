/**
 * Every benchmark-style question a scene answers, not only the one its video was drawn for: the instruction data of
 * the default model's stage 2. One question per video lets a small LLM score well from the question alone (each
 * family has a handful of answers); asking the same video about each of its objects gives answers that differ
 * between questions of one video and between videos for one question, which only the visual tokens explain.
 * Wording, vocabulary and answer semantics are the families' own (questions/*.ts).
 */
import type { Rng } from '@bvllm/core';
import { isBrief, motionOf } from './caption.js';
import type { TaskName } from './config.js';
import { mcqaPrompt, VIDEO_TAG, type McqaPromptStyle } from './prompts.js';
import type { Scene, SceneObject } from './scene.js';
import { COUNTS, DIRECTIONS, OPTION_LETTERS, type ColourName, type ShapeName } from './vocabulary.js';

export interface SceneQuestion {
  task: TaskName;
  question: string;
  /** The open answer: a vocabulary word or a count. */
  answer: string;
  /** Every answer the question's family allows for it, `answer` among them (MCQA options are drawn from these). */
  candidates: string[];
}

const unique = <T>(objects: readonly SceneObject[], key: (o: SceneObject) => T) =>
  objects.filter((o) => objects.filter((p) => key(p) === key(o)).length === 1);

/** The questions `scene` answers unambiguously, in a fixed order. */
export function sceneQuestions(scene: Scene, vocabulary: { shapes: readonly ShapeName[]; colours: readonly ColourName[] }): SceneQuestion[] {
  const { objects } = scene;
  const questions: SceneQuestion[] = [];
  for (const o of unique(objects, (p) => p.shape))
    questions.push({ task: 'attribute', question: `What colour is the ${o.shape}?`, answer: o.colour, candidates: [...vocabulary.colours] });
  for (const o of unique(objects, (p) => p.colour))
    questions.push({ task: 'attribute', question: `What shape is the ${o.colour} object?`, answer: o.shape, candidates: [...vocabulary.shapes] });
  for (const colour of new Set(objects.map((o) => o.colour))) {
    const count = objects.filter((o) => o.colour === colour).length;
    if ((COUNTS as readonly string[]).includes(String(count)))
      questions.push({ task: 'counting', question: `How many ${colour} shapes appear?`, answer: String(count), candidates: [...COUNTS] });
  }
  for (const o of unique(objects, (p) => `${p.colour} ${p.shape}`)) {
    const motion = motionOf(o);
    if (motion !== 'still')
      questions.push({ task: 'direction', question: `Which way does the ${o.colour} ${o.shape} move?`, answer: motion, candidates: [...DIRECTIONS] });
  }
  // Both orders of every pair, as the family names its two shapes in either order.
  const kinds = unique(objects, (p) => p.shape);
  for (const a of kinds)
    for (const b of kinds) {
      if (a === b || a.startSec === b.startSec) continue;
      const first = a.startSec < b.startSec ? a : b;
      questions.push({ task: 'temporal-order', question: `What appeared first, the ${a.shape} or the ${b.shape}?`, answer: first.shape, candidates: [a.shape, b.shape] });
    }
  const flashes = objects.filter((o) => isBrief(o, scene));
  if (flashes.length === 1)
    questions.push({ task: 'brief-event', question: 'What shape flashed briefly?', answer: flashes[0].shape, candidates: [...vocabulary.shapes] });
  return questions;
}

/** A sample in the VideoLLaMA2 JSON format (spec §2 "Data format"). */
export interface SceneQuestionSample {
  id: string;
  video: string;
  conversations: [{ from: 'human'; value: string }, { from: 'gpt'; value: string }];
}

/**
 * Both forms of every question of every kept video's scene: open (the word) and MCQA (the answer and up to three
 * other candidates, shuffled by `rng`, answered by letter), worded as the benchmark's prompts.
 */
export function sceneQuestionSamples(
  records: readonly { video: string; scene: Scene }[],
  rng: Rng,
  options: { keep?: (video: string) => boolean; style?: McqaPromptStyle; shapes: readonly ShapeName[]; colours: readonly ColourName[] },
): SceneQuestionSample[] {
  const samples: SceneQuestionSample[] = [];
  for (const record of records) {
    if (options.keep && !options.keep(record.video)) continue;
    const stem = record.video.replace(/^videos\//, '').replace(/\.mp4$/, '');
    sceneQuestions(record.scene, options).forEach((q, i) => {
      const others = rng.shuffle(q.candidates.filter((c) => c !== q.answer)).slice(0, 3);
      const shown = rng.shuffle([q.answer, ...others]);
      const turn = (human: string, answer: string) =>
        [{ from: 'human' as const, value: VIDEO_TAG + human }, { from: 'gpt' as const, value: answer }] as SceneQuestionSample['conversations'];
      samples.push({ id: `dense-${stem}-${i}-open`, video: record.video, conversations: turn(q.question, q.answer) });
      samples.push({
        id: `dense-${stem}-${i}-mcqa`,
        video: record.video,
        conversations: turn(mcqaPrompt(q.question, shown, options.style ?? 'perception-test'), OPTION_LETTERS[shown.indexOf(q.answer)]),
      });
    });
  }
  return samples;
}
