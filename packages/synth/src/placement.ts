/**
 * Placing objects so that no two visible at the same frame touch: then no shape hides another, a pixel inside a
 * shape has that shape's colour, and a count of what is visible is a count of what was placed.
 */
import type { Rng } from '@bvllm/core';
import { uniformIn } from './draw.js';
import { BOUNDING_RADIUS_FACTOR, centreAt, isVisible, type Point, type SceneObject } from './scene.js';
import type { ColourName, Direction, ShapeName } from './vocabulary.js';
import { DIRECTIONS } from './vocabulary.js';

/** What a question family asks for; placement picks the size and the path. */
export interface ObjectRequest {
  shape: ShapeName;
  colour: ColourName;
  startSec: number;
  endSec: number;
  /** `still`, one direction, or `any` (still or one of the four, drawn here). */
  motion: 'still' | 'any' | Direction;
}

/** Frame size in pixels and the frame rate that decides at which instants objects must keep apart. */
export interface Canvas {
  size: number;
  fps: number;
}

/** Radius range as a fraction of the frame: 5–7 px at 64 px, large enough to survive yuv420p. */
const RADIUS_RANGE = [0.08, 0.11] as const;
/** Below 3 px a shape is a blob of a few pixels whose kind is lost to chroma subsampling. */
const MIN_RADIUS_PX = 3;
/** A moving object travels this fraction of the frame, so its direction is plain at 1 fps. */
const TRAVEL_RANGE = [0.35, 0.55] as const;
/** Pixels kept free between the bounding circles of co-visible objects. */
const GAP_PX = 2;
const TRIES = 60;

/**
 * Places every request in order, or returns null when one cannot be placed without touching another (the caller
 * retries the whole scene with a fresh draw).
 */
export function placeObjects(rng: Rng, canvas: Canvas, requests: readonly ObjectRequest[]): SceneObject[] | null {
  const placed: SceneObject[] = [];
  for (const request of requests) {
    let found: SceneObject | null = null;
    for (let attempt = 0; attempt < TRIES && !found; attempt++) {
      const candidate = drawPath(rng, canvas, request);
      if (placed.every((other) => apart(candidate, other, canvas.fps))) found = candidate;
    }
    if (!found) return null;
    placed.push(found);
  }
  return placed;
}

function drawPath(rng: Rng, canvas: Canvas, request: ObjectRequest): SceneObject {
  const { size } = canvas;
  const radiusPx = Math.max(MIN_RADIUS_PX, uniformIn(rng, RADIUS_RANGE[0] * size, RADIUS_RANGE[1] * size));
  const margin = BOUNDING_RADIUS_FACTOR * radiusPx + 1;
  const motion = request.motion === 'any' ? (['still', ...DIRECTIONS] as const)[rng.int(5)] : request.motion;
  const base = { shape: request.shape, colour: request.colour, radiusPx, startSec: request.startSec, endSec: request.endSec };
  const across = () => uniformIn(rng, margin, size - margin);
  if (motion === 'still') {
    const from = { x: across(), y: across() };
    return { ...base, from, to: { ...from } };
  }
  const travel = Math.min(uniformIn(rng, TRAVEL_RANGE[0] * size, TRAVEL_RANGE[1] * size), size - 2 * margin);
  const begin = uniformIn(rng, margin, size - margin - travel);
  const sign = motion === 'right' || motion === 'down' ? 1 : -1;
  // A leftward or upward path starts at the far end of the same interval.
  const a = sign > 0 ? begin : begin + travel;
  const b = a + sign * travel;
  const cross = across();
  const horizontal = motion === 'left' || motion === 'right';
  const from: Point = horizontal ? { x: a, y: cross } : { x: cross, y: a };
  const to: Point = horizontal ? { x: b, y: cross } : { x: cross, y: b };
  return { ...base, from, to };
}

/** True when the two objects' bounding circles keep `GAP_PX` apart at every frame where both are drawn. */
function apart(a: SceneObject, b: SceneObject, fps: number): boolean {
  const first = Math.ceil(Math.max(a.startSec, b.startSec) * fps);
  const last = Math.ceil(Math.min(a.endSec, b.endSec) * fps);
  const minDist = BOUNDING_RADIUS_FACTOR * (a.radiusPx + b.radiusPx) + GAP_PX;
  for (let i = Math.max(0, first - 1); i <= last; i++) {
    const t = i / fps;
    if (!isVisible(a, t) || !isVisible(b, t)) continue;
    const pa = centreAt(a, t);
    const pb = centreAt(b, t);
    if (Math.hypot(pa.x - pb.x, pa.y - pb.y) < minDist) return false;
  }
  return true;
}
