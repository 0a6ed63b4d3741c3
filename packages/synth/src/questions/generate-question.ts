import { InvalidArgumentError, type Rng } from '@bvllm/core';
import type { TaskName } from '../config.js';
import type { SceneObject } from '../scene.js';
import { OPTION_LETTERS } from '../vocabulary.js';
import { attribute } from './attribute.js';
import { briefEvent } from './brief-event.js';
import { counting } from './counting.js';
import { direction } from './direction.js';
import type { FamilyContext, QuestionFamily } from './family.js';
import { temporalOrder } from './temporal-order.js';

/** The five question families by task name. */
export const QUESTION_FAMILIES: Readonly<Record<TaskName, QuestionFamily>> = {
  'brief-event': briefEvent,
  counting,
  'temporal-order': temporalOrder,
  direction,
  attribute,
};

/** A question with its scene, in both forms: `answer` is the open answer, `options[answerIndex]` the MCQA one. */
export interface GeneratedQuestion {
  task: TaskName;
  question: string;
  answer: string;
  /** 2–4 options in presentation order; exactly one equals `answer`. */
  options: string[];
  answerIndex: number;
  /** `A`–`D`, the letter of `options[answerIndex]`. */
  answerLetter: string;
  objects: SceneObject[];
  eventSec?: [number, number];
}

/** Redraws before giving up: a crowded layout fails now and then, an impossible one (frames too small) always. */
const ATTEMPTS = 40;

/**
 * Draws one question of family `task` with its scene. Each attempt uses its own fork of `rng`, so the result is a
 * pure function of the generator's state and the context.
 */
export function generateQuestion(task: TaskName, rng: Rng, context: FamilyContext): GeneratedQuestion {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const draw = QUESTION_FAMILIES[task](rng.fork(`attempt-${attempt}`), context);
    if (!draw) continue;
    const options = rng.fork(`options-${attempt}`).shuffle(draw.candidates);
    const answerIndex = options.indexOf(draw.answer);
    return {
      task,
      question: draw.question,
      answer: draw.answer,
      options,
      answerIndex,
      answerLetter: OPTION_LETTERS[answerIndex],
      objects: draw.objects,
      ...(draw.eventSec ? { eventSec: draw.eventSec } : {}),
    };
  }
  throw new InvalidArgumentError(
    'size',
    `could not lay out a scene for "${task}" without overlaps in ${ATTEMPTS} attempts at ${context.size}×${context.size} px; use larger frames`,
  );
}
