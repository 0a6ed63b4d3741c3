import type { Rng } from '@bvllm/core';
import { pickDistinct } from '../draw.js';
import type { Canvas } from '../placement.js';
import type { SceneObject } from '../scene.js';
import type { ColourName, ShapeName } from '../vocabulary.js';

/** What a question family may use: the canvas, the video length and the configured vocabulary. */
export interface FamilyContext extends Canvas {
  durationSec: number;
  /** `durationSec × fps`. */
  numFrames: number;
  shapes: readonly ShapeName[];
  colours: readonly ColourName[];
  briefMinSec: number;
  briefMaxSec: number;
  uniformProbeFrames: number;
}

/** One question drawn with the scene that answers it. */
export interface FamilyDraw {
  objects: SceneObject[];
  /** The question in plain words, e.g. "How many red shapes appear?". */
  question: string;
  /** The short open-ended answer, one vocabulary word or a count. */
  answer: string;
  /** The MCQA options before shuffling, `answer` among them, 2 to 4 of them. */
  candidates: string[];
  /** The brief event's visible window `[startSec, endSec)`, for evaluations that check which frames were chosen. */
  eventSec?: [number, number];
}

/** Draws a scene and its question, or null when the scene could not be laid out (the caller redraws). */
export type QuestionFamily = (rng: Rng, context: FamilyContext) => FamilyDraw | null;

/** The answer plus up to three other words of its vocabulary. */
export function optionsAround(rng: Rng, answer: string, vocabulary: readonly string[]): string[] {
  return [answer, ...pickDistinct(rng, vocabulary.filter((w) => w !== answer), 3)];
}

/** Whole frames' time for `sec`, so windows start and end on frame boundaries. */
export function snapToFrame(sec: number, fps: number): number {
  return Math.round(sec * fps) / fps;
}
