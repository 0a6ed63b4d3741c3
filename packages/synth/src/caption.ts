/**
 * Video captions from scene descriptions: the video-text pairs of stage-1 alignment (spec §2: stage 1 trains on
 * 703K Valley video-text pairs, never on question answers). Every fact a benchmark question can ask about is in the
 * caption (which shapes of which colours, how many, in what order they appear, how each moves, which one flashes),
 * so aligning on captions teaches the visual path to carry exactly what the questions need.
 */
import type { Scene, SceneObject } from './scene.js';
import type { Direction } from './vocabulary.js';
import { VIDEO_TAG } from './prompts.js';

/** The instruction of every caption sample; in the plain format of stage 1 it is supervised too (spec §2). */
export const CAPTION_PROMPT = 'Describe the video.';

/**
 * A still object counts as brief when it is visible for less than this share of the video: the brief-event family
 * keeps its (still) flash to 1–2 s of 8–12 s videos, while every other object stays at least 40% of the video.
 */
const BRIEF_SHARE = 0.3;

/** How the object moves: the placement only makes axis-aligned or still paths. */
export function motionOf(object: SceneObject): Direction | 'still' {
  const dx = object.to.x - object.from.x;
  const dy = object.to.y - object.from.y;
  if (dx === 0 && dy === 0) return 'still';
  if (Math.abs(dx) >= Math.abs(dy)) return dx > 0 ? 'right' : 'left';
  return dy > 0 ? 'down' : 'up';
}

/** Whether the object is the kind of flash the brief-event family asks about: still, and on screen only briefly. */
export function isBrief(object: SceneObject, scene: Pick<Scene, 'durationSec'>): boolean {
  return motionOf(object) === 'still' && object.endSec - object.startSec < BRIEF_SHARE * scene.durationSec;
}

function describe(object: SceneObject, scene: Scene): string {
  const name = `${object.colour} ${object.shape}`;
  const motion = motionOf(object);
  if (motion !== 'still') return `${name} moves ${motion}`;
  return isBrief(object, scene) ? `${name} flashed briefly` : `${name} stays still`;
}

/**
 * One caption, objects in order of appearance (ties keep the scene's order), e.g.
 * "3 shapes appear. a red square moves left. a blue triangle stays still. then a green triangle flashed briefly."
 */
export function captionScene(scene: Scene): string {
  const objects = scene.objects.map((object, index) => ({ object, index })).sort((a, b) => a.object.startSec - b.object.startSec || a.index - b.index);
  const first = objects[0]?.object.startSec;
  const clauses = objects.map(({ object }) => `${object.startSec > first! ? 'then a' : 'a'} ${describe(object, scene)}.`);
  const count = objects.length === 1 ? '1 shape appears.' : `${objects.length} shapes appear.`;
  return [count, ...clauses].join(' ');
}

/** A caption sample in the VideoLLaMA2 JSON format (spec §2 "Data format"), for the trainer's stage 1. */
export interface CaptionSample {
  id: string;
  video: string;
  conversations: [{ from: 'human'; value: string }, { from: 'gpt'; value: string }];
}

/** Caption samples of the videos whose path passes `keep` (e.g. only the training split's). */
export function captionSamples(records: readonly { video: string; scene: Scene }[], keep: (video: string) => boolean = () => true): CaptionSample[] {
  return records
    .filter((record) => keep(record.video))
    .map((record) => ({
      id: `caption-${record.video.replace(/^videos\//, '').replace(/\.mp4$/, '')}`,
      video: record.video,
      conversations: [
        { from: 'human', value: `${VIDEO_TAG}${CAPTION_PROMPT}` },
        { from: 'gpt', value: captionScene(record.scene) },
      ],
    }));
}
