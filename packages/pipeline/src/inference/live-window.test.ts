import { f16ToF32, f32ToF16 } from '@bvllm/core';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LiveWindow, type WindowFrame } from './live-window.js';

const N = 4;
const C = 8;

/** Frame `i`: every value encodes the frame number and the position, so a read-back names where it came from. */
function frame(i: number, timestampSec = i): WindowFrame {
  const patches = Float32Array.from({ length: N * C }, (_, j) => i + j / 64);
  const cls = Float32Array.from({ length: C }, (_, j) => -i - j / 64);
  return { cls, patches, timestampSec, sequence: i };
}

const f16 = (v: number) => f16ToF32(f32ToF16(v));

describe('LiveWindow', () => {
  it('keeps exactly the frames of the last W seconds', () => {
    const window = new LiveWindow({ windowSec: 10, fps: 1, numPatches: N, width: C, selectionFeature: 'cls' });
    for (let i = 0; i < 45; i++) window.push(frame(i));
    const video = window.snapshot();
    // (44 − 10, 44]: ten frames, 35 … 44.
    expect(video.timestampsSec).toEqual(Array.from({ length: 10 }, (_, k) => 35 + k));
    expect(video.frameIndices).toEqual(video.timestampsSec);
    expect(Array.from(video.cls.subarray(0, C))).toEqual(Array.from(frame(35).cls));
    expect(Array.from(video.patches.read([9]))).toEqual(Array.from(frame(44).patches, f16));
    expect(window.status()).toMatchObject({ frames: 10, fromSec: 35, toSec: 44, longTermFrames: 0, location: 'memory' });
    // Uneven arrival (a 29.97 fps source sampled at 1 fps): still the frames after t − W.
    const uneven = new LiveWindow({ windowSec: 5, fps: 1, numPatches: N, width: C, selectionFeature: 'cls' });
    const times = Array.from({ length: 30 }, (_, k) => k * 1.001);
    times.forEach((t, k) => uneven.push(frame(k, t)));
    expect(uneven.snapshot().timestampsSec).toEqual(times.filter((t) => t > times.at(-1)! - 5));
  });

  it('its memory is fixed at construction, whatever the stream age', () => {
    const window = new LiveWindow({ windowSec: 20, fps: 2, numPatches: N, width: C, selectionFeature: 'mean', longTerm: { everySec: 30, maxFrames: 5 } });
    const bytes = window.status().bytes;
    for (let i = 0; i < 5000; i++) window.push(frame(i, i / 2));
    expect(window.status().bytes).toBe(bytes);
    expect(window.status().frames).toBe(40);
  });

  it('keeps one frame per N seconds before the window, at most M of them, oldest first', () => {
    const window = new LiveWindow({ windowSec: 10, fps: 1, numPatches: N, width: C, selectionFeature: 'mean', longTerm: { everySec: 15, maxFrames: 3 } });
    for (let i = 0; i < 100; i++) window.push(frame(i));
    const video = window.snapshot();
    // Frames 0, 15, …, 75 left the window in turn; the last three are kept, then the window's 90 … 99.
    expect(video.timestampsSec).toEqual([45, 60, 75, ...Array.from({ length: 10 }, (_, k) => 90 + k)]);
    // Long-term patches are the frame's own, and the selection feature is the mean over its patches.
    expect(Array.from(video.patches.read([1]))).toEqual(Array.from(frame(60).patches, f16));
    const mean = Array.from({ length: C }, (_, j) => 60 + (j + (C * (N - 1)) / 2) / 64);
    Array.from(video.feature.subarray(C, 2 * C)).forEach((v, j) => expect(v).toBeCloseTo(mean[j], 5));
  });

  it('a snapshot stays readable while frames arrive, and fails typed once its frames are overwritten', () => {
    const window = new LiveWindow({ windowSec: 5, fps: 1, numPatches: N, width: C, selectionFeature: 'cls', reserveFrames: 4 });
    for (let i = 0; i < 10; i++) window.push(frame(i));
    const video = window.snapshot();
    expect(video.timestampsSec).toEqual([5, 6, 7, 8, 9]);
    for (let i = 10; i < 13; i++) window.push(frame(i));
    expect(Array.from(video.patches.read([0]))).toEqual(Array.from(frame(5).patches, f16));
    for (let i = 13; i < 20; i++) window.push(frame(i));
    expect(() => video.patches.read([0])).toThrow(expect.objectContaining({ code: 'STREAM_SNAPSHOT_EXPIRED' }));
    // The snapshot's [CLS] are its own copy: unchanged by the frames after it.
    expect(Array.from(video.cls.subarray(0, C))).toEqual(Array.from(frame(5).cls));
  });

  it('puts a large ring in a temp file and removes it on close', () => {
    const window = new LiveWindow({ windowSec: 10, fps: 1, numPatches: N, width: C, selectionFeature: 'cls', patchMemoryBytes: 64 });
    for (let i = 0; i < 30; i++) window.push(frame(i));
    expect(window.status().location).toBe('file');
    expect(Array.from(window.snapshot().patches.read([0, 9]))).toEqual([...Array.from(frame(20).patches, f16), ...Array.from(frame(29).patches, f16)]);
    window.close();
    expect(() => window.snapshot()).toThrow(/closed/);
    expect(() => window.push(frame(30))).toThrow(/closed/);
  });

  it('a snapshot open when the window closes still reads its frames; the temp file goes with the last snapshot', () => {
    const window = new LiveWindow({ windowSec: 10, fps: 1, numPatches: N, width: C, selectionFeature: 'cls', patchMemoryBytes: 64 });
    for (let i = 0; i < 12; i++) window.push(frame(i));
    const first = window.snapshot();
    const second = window.snapshot();
    const file = window.status().file!;
    window.close();
    // A question in flight on a closed stream (DELETE mid-answer) reads the frames it was given, not another file's.
    expect(Array.from(first.patches.read([0, 9]))).toEqual([...Array.from(frame(2).patches, f16), ...Array.from(frame(11).patches, f16)]);
    first.close();
    first.close(); // idempotent: one release per snapshot
    expect(Array.from(second.patches.read([3]))).toEqual(Array.from(frame(5).patches, f16));
    expect(existsSync(file)).toBe(true);
    second.close();
    expect(existsSync(file)).toBe(false);
  });

  it('refuses frames out of order or of the wrong shape', () => {
    const window = new LiveWindow({ windowSec: 10, fps: 1, numPatches: N, width: C, selectionFeature: 'cls' });
    window.push(frame(3));
    expect(() => window.push(frame(2))).toThrow(/not after/);
    expect(() => window.push({ ...frame(4), cls: new Float32Array(3) })).toThrow(/expected cls/);
    expect(() => new LiveWindow({ windowSec: 10, fps: 1, numPatches: N, width: C, selectionFeature: 'cls' }).snapshot()).toThrow(/no frame/);
  });
});
