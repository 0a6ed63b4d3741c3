import { describe, expect, it } from 'vitest';
import { sampleFrameIndices, samplingOptionsSchema } from './sampling.js';

const opts = (o: object = {}) => samplingOptionsSchema.parse(o);

describe('sampleFrameIndices (spec §3 fps mode, spec §2 uniform mode)', () => {
  it('fps mode takes the middle frame of each 1-s segment', () => {
    // 10 fps, 40 frames: segments [0,10) [10,20) … → 5, 15, 25, 35.
    expect(sampleFrameIndices(40, 10, opts())).toEqual([5, 15, 25, 35]);
    // 29.97 fps: segment = 29.97 // 1 = 29 → arange(14, 100, 29).
    expect(sampleFrameIndices(100, 29.97, opts())).toEqual([14, 43, 72]);
    // A clip shorter than one segment: segment = duration → its middle frame.
    expect(sampleFrameIndices(7, 25, opts())).toEqual([3]);
  });

  it('fps mode never steps by zero on a video slower than the sampling rate', () => {
    expect(sampleFrameIndices(3, 0.5, opts())).toEqual([0, 1, 2]);
  });

  it('uniform mode takes segment centres of [0, duration − 1] (v1 frame_sample)', () => {
    // seg = 99/4 = 24.75; centres 12.375, 37.125, 61.875, 86.625 → round.
    expect(sampleFrameIndices(100, 25, opts({ mode: 'uniform', numFrames: 4 }))).toEqual([12, 37, 62, 87]);
    // Fewer frames than requested: duplicates, as in the code (seg = 2/4: 0.25, 0.75, 1.25, 1.75 → 0, 1, 1, 2).
    expect(sampleFrameIndices(3, 25, opts({ mode: 'uniform', numFrames: 4 }))).toEqual([0, 1, 1, 2]);
  });

  it('start/end bounds use int(s·fps) − 1 … int(e·fps) − 1, swapped when reversed', () => {
    // 10 fps, s = 1, e = 3 → frames 9 … 29 (21 frames), segment 10 → offsets 5, 15 → 14, 24.
    expect(sampleFrameIndices(40, 10, opts({ startSec: 1, endSec: 3 }))).toEqual([14, 24]);
    expect(sampleFrameIndices(40, 10, opts({ startSec: 3, endSec: 1 }))).toEqual([14, 24]);
    // Only one bound given: ignored, as process_video does.
    expect(sampleFrameIndices(40, 10, opts({ startSec: 3 }))).toEqual([5, 15, 25, 35]);
  });

  it('maxFrames truncates the list instead of resampling', () => {
    expect(sampleFrameIndices(40, 10, opts({ maxFrames: 2 }))).toEqual([5, 15]);
  });

  it('rejects unknown options and empty videos', () => {
    expect(() => samplingOptionsSchema.parse({ fps: 2 })).toThrow();
    expect(() => sampleFrameIndices(0, 10, opts())).toThrow(/numFrames/);
  });
});
