import { pick, pickDistinct, uniformIn } from '../draw.js';
import { placeObjects } from '../placement.js';
import { snapToFrame, type QuestionFamily } from './family.js';

/**
 * "What appeared first, the circle or the square?": two or three shapes of distinct kinds enter one after another
 * in the first 70% of the video and all stay to the end, so no single frame tells the order; the model must compare
 * frames in time. Entrances are at least 1 s apart (when the video allows), so a 1-fps frame (spec §3) always falls
 * between two of them.
 */
export const temporalOrder: QuestionFamily = (rng, context) => {
  const { durationSec, fps, shapes, colours } = context;
  const n = (0.7 * durationSec) / 3 >= 1 + 1 / fps ? 2 + rng.int(2) : 2;
  const kinds = pickDistinct(rng, shapes, n);
  const slot = (0.7 * durationSec) / n;
  // Jitter within a slot leaves at least 1 s (or the whole slot, if shorter) between consecutive entrances, also
  // after each start is snapped to a frame (half a frame either way).
  const jitter = Math.max(0, slot - 1 - 1 / fps);
  const objects = placeObjects(
    rng,
    context,
    kinds.map((shape, i) => ({
      shape,
      colour: pick(rng, colours),
      startSec: snapToFrame(i * slot + uniformIn(rng, 0, jitter), fps),
      endSec: durationSec,
      motion: 'any' as const,
    })),
  );
  if (!objects) return null;
  const [a, b] = pickDistinct(rng, objects, 2);
  if (a.startSec === b.startSec) return null;
  const first = a.startSec < b.startSec ? a : b;
  return {
    objects,
    question: `What appeared first, the ${a.shape} or the ${b.shape}?`,
    answer: first.shape,
    candidates: [a.shape, b.shape],
  };
};
