import { pick, uniformIn } from '../draw.js';
import { placeObjects, type ObjectRequest } from '../placement.js';
import { DIRECTIONS } from '../vocabulary.js';
import { snapToFrame, type QuestionFamily } from './family.js';

/**
 * "Which way does the blue square move?": the named shape crosses a third to a half of the frame in 3–8 s; one or
 * two other shapes (never the same colour and shape) stand still or move their own way, so the question's words
 * decide which motion counts.
 */
export const direction: QuestionFamily = (rng, context) => {
  const { durationSec, fps, shapes, colours } = context;
  const target = { shape: pick(rng, shapes), colour: pick(rng, colours) };
  const way = pick(rng, DIRECTIONS);
  const span = uniformIn(rng, Math.min(durationSec, 3), Math.min(durationSec, 8));
  const startSec = snapToFrame(uniformIn(rng, 0, durationSec - span), fps);
  const requests: ObjectRequest[] = [{ ...target, startSec, endSec: Math.min(durationSec, snapToFrame(startSec + span, fps)), motion: way }];
  const distractors = 1 + rng.int(2);
  for (let i = 0; i < distractors; i++) {
    let other = { shape: pick(rng, shapes), colour: pick(rng, colours) };
    while (other.shape === target.shape && other.colour === target.colour) other = { shape: pick(rng, shapes), colour: pick(rng, colours) };
    const from = snapToFrame(uniformIn(rng, 0, 0.5 * durationSec), fps);
    const to = snapToFrame(uniformIn(rng, from + 0.4 * durationSec, durationSec), fps);
    requests.push({ ...other, startSec: from, endSec: to, motion: 'any' });
  }
  const objects = placeObjects(rng, context, requests);
  if (!objects) return null;
  return {
    objects,
    question: `Which way does the ${target.colour} ${target.shape} move?`,
    answer: way,
    candidates: [...DIRECTIONS],
  };
};
