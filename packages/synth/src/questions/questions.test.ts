import { InvalidArgumentError, Rng } from '@bvllm/core';
import { describe, expect, it } from 'vitest';
import { TASKS, type TaskName } from '../config.js';
import { renderFrame } from '../render.js';
import { centreAt, isVisible, oneFpsFrameIndices, uniformFrameIds, type Scene, type SceneObject } from '../scene.js';
import { pixelAt } from '../testing/decode-rgb.js';
import { COLOURS, COUNTS, DIRECTIONS, OPTION_LETTERS, PALETTE, SHAPES } from '../vocabulary.js';
import type { FamilyContext } from './family.js';
import { generateQuestion, type GeneratedQuestion } from './generate-question.js';

const shapes = ['circle', 'square', 'triangle', 'cross'] as const;
const colours = ['red', 'green', 'blue', 'yellow'] as const;

function context(durationSec: number): FamilyContext {
  return { size: 64, fps: 4, numFrames: durationSec * 4, durationSec, shapes, colours, briefMinSec: 1, briefMaxSec: 2, uniformProbeFrames: 4 };
}

/** 30 draws per family over 8–12 s videos, each from its own seed. */
function draws(task: TaskName): { q: GeneratedQuestion; ctx: FamilyContext }[] {
  return Array.from({ length: 30 }, (_, i) => {
    const ctx = context(8 + (i % 5));
    return { q: generateQuestion(task, Rng.fromSeed(1000 + i).fork(task), ctx), ctx };
  });
}

function sceneOf(q: GeneratedQuestion, ctx: FamilyContext): Scene {
  return { size: ctx.size, fps: ctx.fps, durationSec: ctx.durationSec, numFrames: ctx.numFrames, background: [24, 24, 24], objects: q.objects };
}

const visibleAt = (o: SceneObject, frame: number, fps: number) => isVisible(o, frame / fps);

describe.each(TASKS)('%s questions', (task) => {
  const all = draws(task);

  it('lists the answer exactly once among distinct options, at the letter it reports', () => {
    for (const { q } of all) {
      expect(new Set(q.options).size).toBe(q.options.length);
      expect(q.options.filter((o) => o === q.answer)).toHaveLength(1);
      expect(q.options[q.answerIndex]).toBe(q.answer);
      expect(q.answerLetter).toBe(OPTION_LETTERS[q.answerIndex]);
      expect(q.options.length).toBe(task === 'temporal-order' ? 2 : 4);
    }
  });

  it('keeps co-visible objects apart, so each one\'s centre pixel shows its colour in every frame it is visible', () => {
    for (const { q, ctx } of all.slice(0, 10)) {
      const scene = sceneOf(q, ctx);
      for (let f = 0; f < scene.numFrames; f++) {
        const frame = renderFrame(scene, f);
        for (const o of q.objects) {
          if (!visibleAt(o, f, ctx.fps)) continue;
          const c = centreAt(o, f / ctx.fps);
          expect(pixelAt(frame, 64, c.x, c.y)).toEqual([...PALETTE[o.colour]]);
          for (const v of [c.x, c.y]) {
            expect(v).toBeGreaterThan(1.25 * o.radiusPx - 1e-9);
            expect(v).toBeLessThan(64 - 1.25 * o.radiusPx + 1e-9);
          }
        }
        // Bounding circles (1.25 r covers every shape) of co-visible objects do not meet.
        const shown = q.objects.filter((o) => visibleAt(o, f, ctx.fps));
        for (let i = 0; i < shown.length; i++)
          for (let j = i + 1; j < shown.length; j++) {
            const a = centreAt(shown[i], f / ctx.fps);
            const b = centreAt(shown[j], f / ctx.fps);
            expect(Math.hypot(a.x - b.x, a.y - b.y)).toBeGreaterThan(1.25 * (shown[i].radiusPx + shown[j].radiusPx));
          }
      }
    }
  });

  it('uses every option letter for the answer across draws (no fixed answer position)', () => {
    const letters = new Set(all.map(({ q }) => q.answerLetter));
    expect(letters.size).toBe(task === 'temporal-order' ? 2 : 4);
  });
});

describe('answers computed independently from the scene', () => {
  it('brief-event: one object is visible for 1–2 s and is the answer; the others stay the whole video', () => {
    let missedByUniform = 0;
    for (const { q, ctx } of draws('brief-event')) {
      expect(q.question).toBe('What shape flashed briefly?');
      const brief = q.objects.filter((o) => o.endSec - o.startSec <= 2 + 1e-9);
      expect(brief).toHaveLength(1);
      const [flash] = brief;
      expect(flash.endSec - flash.startSec).toBeGreaterThanOrEqual(1 - 1e-9);
      expect(q.answer).toBe(flash.shape);
      expect(q.eventSec).toEqual([flash.startSec, flash.endSec]);
      for (const o of q.objects) if (o !== flash) expect([o.startSec, o.endSec]).toEqual([0, ctx.durationSec]);
      // The model's 1-fps frames (spec §3) see it at least once.
      const sampled = oneFpsFrameIndices(ctx.numFrames, ctx.fps);
      expect(sampled.some((f) => visibleAt(flash, f, ctx.fps))).toBe(true);
      const uniform = uniformFrameIds(sampled.length, 4).map((j) => sampled[j]);
      if (!uniform.some((f) => visibleAt(flash, f, ctx.fps))) missedByUniform++;
    }
    // Uniform K = 4 of the 1-fps frames mostly misses it: this is where frame selection must earn its keep.
    expect(missedByUniform / 30).toBeGreaterThanOrEqual(0.8);
  });

  it('brief-event: the flash is drawn in its window and nowhere else', () => {
    for (const { q, ctx } of draws('brief-event').slice(0, 6)) {
      const scene = sceneOf(q, ctx);
      const flash = q.objects[2];
      const without = { ...scene, objects: q.objects.filter((o) => o !== flash) };
      for (let f = 0; f < scene.numFrames; f++) {
        const withFlash = renderFrame(scene, f);
        const inWindow = f / ctx.fps >= q.eventSec![0] && f / ctx.fps < q.eventSec![1];
        expect(Buffer.from(withFlash).equals(Buffer.from(renderFrame(without, f)))).toBe(!inWindow);
        if (inWindow) expect(pixelAt(withFlash, 64, flash.from.x, flash.from.y)).toEqual([...PALETTE[flash.colour]]);
      }
    }
  });

  it('counting: the answer is the number of objects of the asked colour, all on screen mid-video', () => {
    const seen = new Set<string>();
    for (const { q, ctx } of draws('counting')) {
      const colour = /^How many (\w+) shapes appear\?$/.exec(q.question)![1];
      const ofColour = q.objects.filter((o) => o.colour === colour);
      expect(q.answer).toBe(String(ofColour.length));
      expect(COUNTS).toContain(q.answer);
      expect(q.objects.length).toBeGreaterThan(ofColour.length);
      const middle = Math.floor(ctx.numFrames / 2);
      for (const o of ofColour) expect(visibleAt(o, middle, ctx.fps)).toBe(true);
      seen.add(q.answer);
    }
    expect(seen.size).toBe(4);
  });

  it('temporal-order: the answer is the named shape that entered first, at least 1 s before the other', () => {
    for (const { q, ctx } of draws('temporal-order')) {
      const [, a, b] = /^What appeared first, the (\w+) or the (\w+)\?$/.exec(q.question)!;
      const oa = q.objects.filter((o) => o.shape === a);
      const ob = q.objects.filter((o) => o.shape === b);
      expect(oa).toHaveLength(1);
      expect(ob).toHaveLength(1);
      expect(q.answer).toBe(oa[0].startSec < ob[0].startSec ? a : b);
      expect(Math.abs(oa[0].startSec - ob[0].startSec)).toBeGreaterThanOrEqual(1);
      // Both are still there at the end, so the last frame alone cannot tell.
      for (const o of [oa[0], ob[0]]) expect(visibleAt(o, ctx.numFrames - 1, ctx.fps)).toBe(true);
      expect(new Set(q.options)).toEqual(new Set([a, b]));
    }
  });

  it('direction: the answer is the way the one object of the named colour and shape travels', () => {
    const seen = new Set<string>();
    for (const { q } of draws('direction')) {
      const [, colour, shape] = /^Which way does the (\w+) (\w+) move\?$/.exec(q.question)!;
      const targets = q.objects.filter((o) => o.colour === colour && o.shape === shape);
      expect(targets).toHaveLength(1);
      const dx = targets[0].to.x - targets[0].from.x;
      const dy = targets[0].to.y - targets[0].from.y;
      const way = Math.abs(dx) > Math.abs(dy) ? (dx > 0 ? 'right' : 'left') : dy > 0 ? 'down' : 'up';
      expect(q.answer).toBe(way);
      expect(Math.hypot(dx, dy)).toBeGreaterThan(0.3 * 64);
      seen.add(way);
    }
    expect(seen).toEqual(new Set(DIRECTIONS));
  });

  it('attribute: the asked attribute belongs to the one object the question names', () => {
    for (const { q } of draws('attribute')) {
      const byShape = /^What colour is the (\w+)\?$/.exec(q.question);
      const byColour = /^What shape is the (\w+) object\?$/.exec(q.question);
      if (byShape) {
        const match = q.objects.filter((o) => o.shape === byShape[1]);
        expect(match).toHaveLength(1);
        expect(q.answer).toBe(match[0].colour);
        expect(COLOURS).toContain(q.answer);
      } else {
        expect(byColour).not.toBeNull();
        const match = q.objects.filter((o) => o.colour === byColour![1]);
        expect(match).toHaveLength(1);
        expect(q.answer).toBe(match[0].shape);
        expect(SHAPES).toContain(q.answer);
      }
    }
  });
});

describe('generateQuestion', () => {
  it('is a pure function of the generator state', () => {
    const a = generateQuestion('direction', Rng.fromSeed(7), context(10));
    const b = generateQuestion('direction', Rng.fromSeed(7), context(10));
    expect(a).toEqual(b);
    expect(generateQuestion('direction', Rng.fromSeed(8), context(10))).not.toEqual(a);
  });

  it('fails with a typed error when frames are too small for the scene', () => {
    // Two or three 3-px shapes (the minimum radius) cannot keep apart in 16 px.
    expect(() => generateQuestion('attribute', Rng.fromSeed(1), { ...context(8), size: 16 })).toThrow(InvalidArgumentError);
    expect(() => generateQuestion('attribute', Rng.fromSeed(1), { ...context(8), size: 16 })).toThrow(/could not lay out a scene for "attribute"/);
  });
});

describe('uniformFrameIds (VideoLLaMA2 frame_sample, spec §2)', () => {
  it('matches hand-computed indices', () => {
    // seg = 11/4 = 2.75; middles 1.375, 4.125, 6.875, 9.625.
    expect(uniformFrameIds(12, 4)).toEqual([1, 4, 7, 10]);
    // seg = 7/4; middles 0.875, 2.625, 4.375, 6.125.
    expect(uniformFrameIds(8, 4)).toEqual([1, 3, 4, 6]);
  });

  it('oneFpsFrameIndices takes the middle frame of each second (spec §3)', () => {
    expect(oneFpsFrameIndices(12, 4)).toEqual([2, 6, 10]);
    expect(oneFpsFrameIndices(15, 5)).toEqual([2, 7, 12]);
  });
});
