import { Rng } from '@bvllm/core';
import { describe, expect, it } from 'vitest';
import { CAPTION_PROMPT, captionSamples, captionScene, motionOf } from './caption.js';
import { TASKS } from './config.js';
import type { FamilyContext } from './questions/family.js';
import { generateQuestion } from './questions/generate-question.js';
import type { Scene, SceneObject } from './scene.js';

const object = (o: Partial<SceneObject>): SceneObject => ({
  shape: 'square',
  colour: 'red',
  radiusPx: 5,
  startSec: 0,
  endSec: 10,
  from: { x: 10, y: 10 },
  to: { x: 10, y: 10 },
  ...o,
});
const scene = (objects: SceneObject[]): Scene => ({ size: 64, fps: 4, durationSec: 10, numFrames: 40, background: [24, 24, 24], objects });

describe('captionScene', () => {
  it('lists the objects in order of appearance with their motion, by hand', () => {
    const caption = captionScene(
      scene([
        object({ shape: 'triangle', colour: 'green', startSec: 4, endSec: 5.5 }),
        object({ shape: 'square', colour: 'red', from: { x: 40, y: 30 }, to: { x: 12, y: 30 } }),
        object({ shape: 'circle', colour: 'blue', startSec: 0, endSec: 8, from: { x: 20, y: 10 }, to: { x: 20, y: 50 } }),
      ]),
    );
    expect(caption).toBe('3 shapes appear. a red square moves left. a blue circle moves down. then a green triangle flashed briefly.');
  });

  it('reads the dominant axis of a path as its direction (y grows downwards)', () => {
    expect(motionOf(object({ to: { x: 10, y: 2 } }))).toBe('up');
    expect(motionOf(object({ to: { x: 30, y: 12 } }))).toBe('right');
    expect(motionOf(object({}))).toBe('still');
  });

  // Stage-1 alignment only helps if the caption states what the questions ask: check it on every family's draws.
  const context = (durationSec: number): FamilyContext => ({
    size: 64,
    fps: 4,
    numFrames: durationSec * 4,
    durationSec,
    shapes: ['circle', 'square', 'triangle', 'cross'],
    colours: ['red', 'green', 'blue', 'yellow'],
    briefMinSec: 1,
    briefMaxSec: 2,
    uniformProbeFrames: 4,
  });
  it.each(TASKS)('states the answer to every %s question', (task) => {
    for (let i = 0; i < 30; i++) {
      const ctx = context(8 + (i % 5));
      const q = generateQuestion(task, Rng.fromSeed(500 + i).fork(task), ctx);
      const caption = captionScene({ size: 64, fps: 4, durationSec: ctx.durationSec, numFrames: ctx.numFrames, background: [0, 0, 0], objects: q.objects });
      const clauses = caption.split('. ').slice(1);
      if (task === 'attribute') {
        const colourOf = /What colour is the (\w+)\?/.exec(q.question);
        if (colourOf) expect(caption).toContain(`${q.answer} ${colourOf[1]}`);
        else expect(caption).toContain(`${/the (\w+) object/.exec(q.question)![1]} ${q.answer}`);
      } else if (task === 'brief-event') {
        expect(clauses.filter((c) => c.includes('flashed briefly')).map((c) => c.split(' ').at(-3))).toEqual([q.answer]);
      } else if (task === 'direction') {
        const [, colour, shape] = /the (\w+) (\w+) move\?/.exec(q.question)!;
        expect(caption).toContain(`${colour} ${shape} moves ${q.answer}`);
      } else if (task === 'counting') {
        const colour = /How many (\w+) shapes/.exec(q.question)![1];
        expect(String(clauses.filter((c) => c.split(' ').includes(colour)).length)).toBe(q.answer);
      } else {
        const [, a, b] = /the (\w+) or the (\w+)\?/.exec(q.question)!;
        const at = (shape: string) => clauses.findIndex((c) => c.split(' ').includes(shape));
        expect(at(q.answer)).toBe(Math.min(at(a), at(b)));
      }
    }
  });
});

describe('captionSamples', () => {
  it('writes VideoLLaMA2 samples for the kept videos only', () => {
    const records = [
      { video: 'videos/train-00001.mp4', scene: scene([object({})]) },
      { video: 'videos/test-00001.mp4', scene: scene([object({})]) },
    ];
    const samples = captionSamples(records, (v) => v.startsWith('videos/train-'));
    expect(samples).toEqual([
      {
        id: 'caption-train-00001',
        video: 'videos/train-00001.mp4',
        conversations: [
          { from: 'human', value: `<video>\n${CAPTION_PROMPT}` },
          { from: 'gpt', value: '1 shape appears. a red square stays still.' },
        ],
      },
    ]);
  });
});
