/**
 * Which frames of a video the model sees, exactly as the official code picks them (VideoLLaMA2
 * `mm_utils.frame_sample` / `process_video`, spec §2, §3). Pure index arithmetic, kept apart from decoding so it
 * can be tested against hand-computed indices.
 */
import { z } from 'zod';
import { InvalidArgumentError } from '@bvllm/core';

export const samplingOptionsSchema = z
  .object({
    /** `fps`: one frame from the middle of each 1/`samplesPerSec`-s segment (inference, spec §3); `uniform`: `numFrames` segment centres (training, spec §2). */
    mode: z.enum(['fps', 'uniform']).default('fps'),
    /** Frames sampled per second in `fps` mode. Code: `NUM_FRAMES_PER_SECOND = 1` (spec §3). */
    samplesPerSec: z.number().positive().default(1),
    /** Frames in `uniform` mode. Code: 16 in pretraining, 32 in fine-tuning (spec §2). */
    numFrames: z.number().int().positive().default(16),
    /** Optional start bound in seconds (`s` of `process_video`). */
    startSec: z.number().nonnegative().optional(),
    /** Optional end bound in seconds (`e` of `process_video`); only used together with `startSec`, as in the code. */
    endSec: z.number().nonnegative().optional(),
    /** The list is truncated (not resampled) to this many frames. Code: `MAX_FRAMES = 10200` (spec §3). */
    maxFrames: z.number().int().positive().default(10200),
  })
  .strict();
export type SamplingOptions = z.infer<typeof samplingOptionsSchema>;
export type SamplingInput = z.input<typeof samplingOptionsSchema>;

/** numpy's `round`: half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Frame indices to decode from a video of `numFrames` frames at `fps`, ascending (duplicates possible in uniform
 * mode when the video is shorter than `numFrames`, as in the code).
 */
export function sampleFrameIndices(numFrames: number, fps: number, options: SamplingOptions): number[] {
  if (!(numFrames > 0)) throw new InvalidArgumentError('numFrames', `a video needs at least one frame, got ${numFrames}`);
  if (!(fps > 0)) throw new InvalidArgumentError('fps', `must be positive, got ${fps}`);
  // process_video: bounds apply only when both are given; they are swapped if reversed, widened if equal.
  let fStart = 0;
  let fEnd = numFrames - 1;
  if (options.startSec !== undefined && options.endSec !== undefined) {
    let s = options.startSec;
    let e = options.endSec;
    if (s > e) [s, e] = [e, s];
    else if (s === e) e = s + 1;
    fStart = Math.max(Math.trunc(s * fps) - 1, 0);
    fEnd = Math.min(Math.trunc(e * fps) - 1, numFrames - 1);
  }
  const duration = fEnd - fStart + 1;
  if (duration <= 0) throw new InvalidArgumentError('startSec', `the range [${options.startSec}, ${options.endSec}] s holds no frame of a ${numFrames}-frame video`);
  const offsets: number[] = [];
  if (options.mode === 'fps') {
    // segment_len = min(fps // NUM_FRAMES_PER_SECOND, duration); arange(segment_len // 2, duration, segment_len).
    // A video slower than the sampling rate would give a zero step (numpy raises); one frame per frame is the intent.
    const segment = Math.max(1, Math.min(Math.floor(fps / options.samplesPerSec), duration));
    for (let i = Math.floor(segment / 2); i < duration; i += segment) offsets.push(i);
  } else {
    // v1 uniform: the centre of each of numFrames equal segments of [0, duration − 1], rounded (+1e-6 as in the code).
    const segSize = (duration - 1) / options.numFrames;
    for (let i = 0; i < options.numFrames; i++) offsets.push(roundHalfEven((segSize * i + segSize * (i + 1)) / 2 + 1e-6));
  }
  return offsets.slice(0, options.maxFrames).map((o) => fStart + o);
}
