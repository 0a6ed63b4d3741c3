/**
 * The scene description a video is rendered from and its questions are answered from. A scene is plain data, so a
 * test can compute every answer from it independently of the generator, and `scenes.json` lets an evaluation ask
 * which frames held the event.
 */
import type { ColourName, ShapeName } from './vocabulary.js';

/** A point in pixel coordinates; (0, 0) is the top-left corner of the frame, y grows downwards. */
export interface Point {
  x: number;
  y: number;
}

/** One shape. It is drawn in frame i exactly when `startSec ≤ i / fps < endSec`. */
export interface SceneObject {
  shape: ShapeName;
  colour: ColourName;
  /** Size in pixels: the circle's radius; every shape fits in a circle of 1.25 × this radius. */
  radiusPx: number;
  /** First instant the object is visible, seconds. */
  startSec: number;
  /** First instant it is no longer visible, seconds. */
  endSec: number;
  /** Centre at `startSec`. */
  from: Point;
  /** Centre at `endSec`; the centre moves linearly in between. Equal to `from` for a still object. */
  to: Point;
}

export interface Scene {
  /** Frame width and height, pixels. */
  size: number;
  fps: number;
  durationSec: number;
  /** `durationSec × fps`: frame i shows time i / fps. */
  numFrames: number;
  /** Background sRGB. */
  background: readonly [number, number, number];
  /** Drawn in this order; the generator keeps co-visible objects apart, so the order never hides one. */
  objects: SceneObject[];
}

/** Every shape lies inside a circle of this many radii around its centre (the triangle's base corners are furthest). */
export const BOUNDING_RADIUS_FACTOR = 1.25;

export function frameTimeSec(scene: Pick<Scene, 'fps'>, frameIndex: number): number {
  return frameIndex / scene.fps;
}

export function isVisible(object: SceneObject, timeSec: number): boolean {
  return timeSec >= object.startSec && timeSec < object.endSec;
}

/** The object's centre at `timeSec` (meaningful while it is visible). */
export function centreAt(object: SceneObject, timeSec: number): Point {
  const span = object.endSec - object.startSec;
  const f = span > 0 ? (timeSec - object.startSec) / span : 0;
  return { x: object.from.x + f * (object.to.x - object.from.x), y: object.from.y + f * (object.to.y - object.from.y) };
}

/**
 * Indices of the frames the model sees when it samples 1 fps: the middle frame of each whole second,
 * `arange(fps // 2, numFrames, fps)` (spec §3, `mm_utils.py:144-147`).
 */
export function oneFpsFrameIndices(numFrames: number, fps: number): number[] {
  const out: number[] = [];
  for (let i = Math.floor(fps / 2); i < numFrames; i += fps) out.push(i);
  return out;
}

/**
 * VideoLLaMA2's uniform `frame_sample`: the rounded middles of `k` equal segments of `[0, n - 1]`
 * (spec §2 "uniform", `mm_utils.py:126-141`). This is the uniform baseline the brief event is placed to dodge.
 */
export function uniformFrameIds(n: number, k: number): number[] {
  const seg = (n - 1) / k;
  return Array.from({ length: k }, (_, i) => Math.round(seg * (i + 0.5) + 1e-6));
}
