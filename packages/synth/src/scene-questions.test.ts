import { Rng } from '@bvllm/core';
import { describe, expect, it } from 'vitest';
import { TASKS } from './config.js';
import type { FamilyContext } from './questions/family.js';
import { generateQuestion } from './questions/generate-question.js';
import { sceneQuestionSamples, sceneQuestions } from './scene-questions.js';
import type { Scene, SceneObject } from './scene.js';

const shapes = ['circle', 'square', 'triangle', 'cross'] as const;
const colours = ['red', 'green', 'blue', 'yellow'] as const;
const context = (durationSec: number): FamilyContext => ({ size: 64, fps: 4, numFrames: durationSec * 4, durationSec, shapes, colours, briefMinSec: 1, briefMaxSec: 2, uniformProbeFrames: 4 });
const sceneOf = (objects: SceneObject[], durationSec: number): Scene => ({ size: 64, fps: 4, durationSec, numFrames: durationSec * 4, background: [24, 24, 24], objects });

describe('sceneQuestions', () => {
  // The families are the independent reference: a scene drawn for a question must answer it the same way here.
  it.each(TASKS)("asks the %s family's own question of its scene, with the family's answer", (task) => {
    for (let i = 0; i < 30; i++) {
      const ctx = context(8 + (i % 5));
      const q = generateQuestion(task, Rng.fromSeed(700 + i).fork(task), ctx);
      const asked = sceneQuestions(sceneOf(q.objects, ctx.durationSec), { shapes, colours });
      expect(asked).toContainEqual(expect.objectContaining({ task, question: q.question, answer: q.answer }));
      for (const a of asked) expect(a.candidates).toContain(a.answer);
      expect(new Set(asked.map((a) => a.question)).size).toBe(asked.length);
    }
  });

  it('skips questions a scene leaves ambiguous, by hand', () => {
    const o = (shape: SceneObject['shape'], colour: SceneObject['colour'], startSec: number, to = { x: 10, y: 10 }): SceneObject => ({
      shape,
      colour,
      radiusPx: 5,
      startSec,
      endSec: 8,
      from: { x: 10, y: 10 },
      to,
    });
    const scene = sceneOf([o('square', 'red', 0, { x: 40, y: 10 }), o('square', 'blue', 2), o('circle', 'red', 2)], 8);
    expect(sceneQuestions(scene, { shapes, colours }).map((q) => `${q.question} ${q.answer}`)).toEqual([
      'What colour is the circle? red',
      'What shape is the blue object? square',
      'How many red shapes appear? 2',
      'How many blue shapes appear? 1',
      'Which way does the red square move? right',
    ]);
  });
});

describe('sceneQuestionSamples', () => {
  it('writes each question in both forms; the MCQA letter points at the answer', () => {
    const q = generateQuestion('attribute', Rng.fromSeed(3).fork('attribute'), context(10));
    const samples = sceneQuestionSamples([{ video: 'videos/train-00007.mp4', scene: sceneOf(q.objects, 10) }], Rng.fromSeed(1), { shapes, colours });
    const questions = sceneQuestions(sceneOf(q.objects, 10), { shapes, colours });
    expect(samples).toHaveLength(2 * questions.length);
    questions.forEach((question, i) => {
      const [open, mcqa] = [samples[2 * i], samples[2 * i + 1]];
      expect(open.conversations).toEqual([{ from: 'human', value: `<video>\n${question.question}` }, { from: 'gpt', value: question.answer }]);
      const letter = mcqa.conversations[1].value;
      const option = new RegExp(`\\(${letter}\\) (\\w+)`).exec(mcqa.conversations[0].value)![1];
      expect(option).toBe(question.answer);
      expect(mcqa.id).toBe(`dense-train-00007-${i}-mcqa`);
    });
  });
});
