import { pick, uniformIn } from '../draw.js';
import { placeObjects, type ObjectRequest } from '../placement.js';
import { COUNTS } from '../vocabulary.js';
import { snapToFrame, type QuestionFamily } from './family.js';

/**
 * "How many red shapes appear?": 1–4 shapes of the asked colour and one or two of other colours. They appear in the
 * first 30% of the video and leave in the last 30%, so every middle frame shows all of them: the count needs one
 * well-chosen frame, not tracking identities across frames (too much for the tiny default model).
 */
export const counting: QuestionFamily = (rng, context) => {
  const { durationSec, fps, shapes, colours } = context;
  const colour = pick(rng, colours);
  const count = 1 + rng.int(COUNTS.length);
  const others = colours.filter((c) => c !== colour);
  // At least one shape of another colour, so counting every shape is never the answer; at most five in all.
  const distractors = 1 + rng.int(count === 4 ? 1 : 2);
  const window = () => ({
    startSec: snapToFrame(uniformIn(rng, 0, 0.3 * durationSec), fps),
    endSec: snapToFrame(uniformIn(rng, 0.7 * durationSec, durationSec), fps),
  });
  const requests: ObjectRequest[] = [];
  for (let i = 0; i < count + distractors; i++) {
    requests.push({ shape: pick(rng, shapes), colour: i < count ? colour : pick(rng, others), ...window(), motion: 'still' });
  }
  const objects = placeObjects(rng, context, requests);
  if (!objects) return null;
  return { objects, question: `How many ${colour} shapes appear?`, answer: String(count), candidates: [...COUNTS] };
};
