import { pickDistinct, uniformIn } from '../draw.js';
import { placeObjects } from '../placement.js';
import { optionsAround, snapToFrame, type QuestionFamily } from './family.js';

/**
 * "What colour is the triangle?" or "What shape is the red object?": two or three shapes, all of distinct kinds and
 * distinct colours, so either attribute names exactly one object; they are on screen for the middle of the video.
 */
export const attribute: QuestionFamily = (rng, context) => {
  const { durationSec, fps, shapes, colours } = context;
  const n = 2 + rng.int(2);
  const kinds = pickDistinct(rng, shapes, n);
  const paints = pickDistinct(rng, colours, n);
  const objects = placeObjects(
    rng,
    context,
    kinds.map((shape, i) => ({
      shape,
      colour: paints[i],
      startSec: snapToFrame(uniformIn(rng, 0, 0.3 * durationSec), fps),
      endSec: snapToFrame(uniformIn(rng, 0.7 * durationSec, durationSec), fps),
      motion: 'any' as const,
    })),
  );
  if (!objects) return null;
  const target = objects[rng.int(n)];
  if (rng.int(2) === 0) {
    return {
      objects,
      question: `What colour is the ${target.shape}?`,
      answer: target.colour,
      candidates: optionsAround(rng, target.colour, colours),
    };
  }
  return {
    objects,
    question: `What shape is the ${target.colour} object?`,
    answer: target.shape,
    candidates: optionsAround(rng, target.shape, shapes),
  };
};
