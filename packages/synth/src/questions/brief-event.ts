import type { Rng } from '@bvllm/core';
import { pick, uniformIn } from '../draw.js';
import { placeObjects } from '../placement.js';
import { oneFpsFrameIndices, uniformFrameIds } from '../scene.js';
import { optionsAround, type FamilyContext, type QuestionFamily } from './family.js';

/**
 * "What shape flashed briefly?": two shapes stay for the whole video, a third is visible for 1–2 s only. The window
 * always holds at least one 1-fps frame (spec §3), so a model that looks at the right second can answer, and avoids
 * the K frames a uniform sampler would take from the 1-fps frames whenever the video leaves room. This is the family
 * where text-conditioned frame selection should beat uniform sampling.
 */
export const briefEvent: QuestionFamily = (rng, context) => {
  const { durationSec, shapes, colours } = context;
  const [startFrame, endFrame] = briefWindow(rng, context);
  const flash = { shape: pick(rng, shapes), colour: pick(rng, colours) };
  const stay = () => ({ shape: pick(rng, shapes), colour: pick(rng, colours), startSec: 0, endSec: durationSec, motion: 'any' as const });
  const eventSec: [number, number] = [startFrame / context.fps, endFrame / context.fps];
  const objects = placeObjects(rng, context, [
    stay(),
    stay(),
    { ...flash, startSec: eventSec[0], endSec: eventSec[1], motion: 'still' },
  ]);
  if (!objects) return null;
  return {
    objects,
    question: 'What shape flashed briefly?',
    answer: flash.shape,
    candidates: optionsAround(rng, flash.shape, shapes),
    eventSec,
  };
};

/** `[first, end)` frame indices of the brief window. */
export function briefWindow(rng: Rng, context: FamilyContext): [number, number] {
  const { fps, numFrames, briefMinSec, briefMaxSec, uniformProbeFrames } = context;
  const length = Math.min(numFrames, Math.max(1, Math.round(uniformIn(rng, briefMinSec, briefMaxSec) * fps)));
  const sampled = oneFpsFrameIndices(numFrames, fps);
  const probe = new Set(uniformFrameIds(sampled.length, uniformProbeFrames).map((j) => sampled[j]));
  const seen: number[] = [];
  const dodging: number[] = [];
  for (let first = 0; first + length <= numFrames; first++) {
    const inside = sampled.filter((i) => i >= first && i < first + length);
    if (inside.length === 0) continue;
    seen.push(first);
    if (inside.every((i) => !probe.has(i))) dodging.push(first);
  }
  const choices = dodging.length ? dodging : seen;
  const first = choices[rng.int(choices.length)];
  return [first, first + length];
}
