import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BvllmError } from '@bvllm/core';
import { decodeVideo } from './decode.js';
import { VideoDecodeError } from './errors.js';
import { ffmpegPath } from './ffmpeg.js';
import { probeVideo } from './probe.js';
import { colourVideo, meanColour, patternVideo, tempDir, writeImage } from './test-videos.js';

const COLOURS: Record<string, [number, number, number]> = {
  red: [255, 0, 0],
  lime: [0, 255, 0],
  blue: [0, 0, 255],
  yellow: [255, 255, 0],
  white: [255, 255, 255],
};
const near = (actual: number[], expected: number[]) => actual.every((v, i) => Math.abs(v - expected[i]) < 12);

let dir: string;
let video: string;
beforeAll(() => {
  dir = tempDir();
  video = colourVideo(join(dir, 'colours.mp4'), ['red', 'lime', 'blue', 'yellow', 'white']);
});

describe('probeVideo', () => {
  it('reads size, rate, duration and the exact frame count', async () => {
    const info = await probeVideo(video);
    expect(info).toMatchObject({ width: 32, height: 24, fps: 10, numFrames: 50, codec: 'h264' });
    expect(info.durationSec).toBeCloseTo(5, 1);
  });

  it('a sound video whose path says "corrupt" is read, not refused as damaged', async () => {
    const named = join(dir, 'corrupt-clips');
    mkdirSync(named, { recursive: true });
    const copy = colourVideo(join(named, 'Invalid data found.mp4'), ['red', 'blue']);
    expect((await probeVideo(copy)).numFrames).toBe(20);
    expect((await decodeVideo(copy)).frames).toHaveLength(2);
  });
});

describe('decodeVideo', () => {
  it('1 fps samples the middle of each second: decoded colours prove which frames came back (spec §3)', async () => {
    const v = await decodeVideo(video);
    expect(v.frameIndices).toEqual([5, 15, 25, 35, 45]);
    expect(v.timestampsSec).toEqual([0.5, 1.5, 2.5, 3.5, 4.5]);
    expect([v.width, v.height]).toEqual([32, 24]);
    const names = ['red', 'lime', 'blue', 'yellow', 'white'];
    v.frames.forEach((f, i) => {
      expect(f.length).toBe(32 * 24 * 3);
      expect(near(meanColour(f), COLOURS[names[i]])).toBe(true);
    });
  });

  it('uniform mode, bounds and maxFrames pick the right seconds', async () => {
    const u = await decodeVideo(video, { mode: 'uniform', numFrames: 3 });
    // seg = 49/3: centres 8.17, 24.5, 40.8 → 8, 25 (24.5 + 1e-6 rounds up), 41 → red, blue, white.
    expect(u.frameIndices).toEqual([8, 25, 41]);
    expect(u.frames.map((f) => near(meanColour(f), COLOURS[['red', 'blue', 'white'][u.frames.indexOf(f)]]))).toEqual([true, true, true]);
    const b = await decodeVideo(video, { startSec: 2, endSec: 4 });
    expect(b.frameIndices).toEqual([24, 34]);
    expect(near(meanColour(b.frames[0]), COLOURS.blue) && near(meanColour(b.frames[1]), COLOURS.yellow)).toBe(true);
    expect((await decodeVideo(video, { maxFrames: 2 })).frames).toHaveLength(2);
  });

  it('a GIF is sampled as 25 fps whatever its own rate, as the reference does (spec §3)', async () => {
    const gif = join(dir, 'colours.gif');
    execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', '-i', video, gif]);
    const g = await decodeVideo(gif);
    // 50 frames at an assumed 25 fps: segment 25 → frames 12 and 37, which at the GIF's real 10 fps lie in the
    // lime (second 1) and yellow (second 3) segments.
    expect(g.frameIndices).toEqual([12, 37]);
    expect(g.timestampsSec).toEqual([12 / 25, 37 / 25]);
    expect(near(meanColour(g.frames[0]), COLOURS.lime) && near(meanColour(g.frames[1]), COLOURS.yellow)).toBe(true);
  });

  it('an image is one frame; a folder of frame images is a 3 fps video', async () => {
    const rgb = new Uint8Array(5 * 4 * 3).map((_, i) => (i * 37) % 256);
    const png = writeImage(join(dir, 'one.png'), rgb, 5, 4);
    const img = await decodeVideo(png);
    expect([img.width, img.height, img.frames.length]).toEqual([5, 4, 1]);
    expect(Array.from(img.frames[0])).toEqual(Array.from(rgb)); // png is lossless
    const red = new Uint8Array(16 * 8 * 3).map((_, i) => (i % 3 === 0 ? 255 : 0));
    for (const ext of ['jpg', 'webp']) {
      const lossy = await decodeVideo(writeImage(join(dir, `red.${ext}`), red, 16, 8));
      expect([lossy.width, lossy.height, lossy.frames.length]).toEqual([16, 8, 1]);
      expect(near(meanColour(lossy.frames[0]), COLOURS.red)).toBe(true);
    }
    const folder = join(dir, 'frames');
    mkdirSync(folder);
    for (let i = 0; i < 7; i++) writeImage(join(folder, `f${String(i).padStart(3, '0')}.png`), new Uint8Array(5 * 4 * 3).fill(i * 30), 5, 4);
    const f = await decodeVideo(folder);
    // 7 frames at the assumed 3 fps: segment 3 → indices 1, 4 (spec §3).
    expect(f.frameIndices).toEqual([1, 4]);
    expect(f.timestampsSec).toEqual([1 / 3, 4 / 3]);
    expect([f.frames[0][0], f.frames[1][0]]).toEqual([30, 120]);
  });

  it('fails with VideoDecodeError, never hangs, on bad input', async () => {
    const expectDecodeError = async (path: string, pattern: RegExp, options = {}) => {
      const error = await decodeVideo(path, {}, options).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(VideoDecodeError);
      expect(BvllmError.isInstance(error) && error.code).toBe('VIDEO_DECODE');
      expect((error as Error).message).toContain(path);
      expect((error as Error).message).toMatch(pattern);
    };
    await expectDecodeError(join(dir, 'missing.mp4'), /does not exist/);
    const garbage = join(dir, 'garbage.mp4');
    writeFileSync(garbage, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)));
    // Bytes of no allowed container never reach ffmpeg (media-format.ts).
    await expect(decodeVideo(garbage)).rejects.toMatchObject({ code: 'MEDIA_UNSUPPORTED', kind: 'an unknown format' });
    const pattern = patternVideo(join(dir, 'pattern.mp4'), 4);
    const whole = readFileSync(pattern);
    const cut = join(dir, 'cut.mp4');
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    await expectDecodeError(cut, /corrupt or truncated/);
    const empty = join(dir, 'empty.mp4');
    writeFileSync(empty, whole.subarray(0, 0));
    await expect(decodeVideo(empty)).rejects.toMatchObject({ code: 'MEDIA_UNSUPPORTED', kind: 'an empty file' });
    const unknownCodec = join(dir, 'unknown-codec.mp4');
    writeFileSync(unknownCodec, Buffer.from(whole.toString('latin1').replaceAll('avc1', 'qqqq'), 'latin1'));
    await expectDecodeError(unknownCodec, /unsupported codec "qqqq"/);
    await expectDecodeError(video, /resolution 32x24 exceeds/, { maxPixels: 100 });
    // A wall-clock limit kills ffmpeg instead of waiting on it.
    await expectDecodeError(pattern, /ffmpeg was killed/, { timeoutMs: 1 });
    await expectDecodeError(video, /decode budget/, { maxBytes: 1000 });
  });

  it('rejects unknown sampling options with a ConfigError naming them', async () => {
    await expect(decodeVideo(video, { fps: 2 } as never)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('fps') });
  });

  it('BVLLM_FFMPEG overrides the binary; a missing one is a VideoDecodeError, not a hang', async () => {
    process.env.BVLLM_FFMPEG = join(dir, 'no-such-ffmpeg');
    try {
      expect(ffmpegPath()).toBe(join(dir, 'no-such-ffmpeg'));
      await expect(decodeVideo(video)).rejects.toThrow(/cannot run ffmpeg \(spawn .*ENOENT\)/);
    } finally {
      delete process.env.BVLLM_FFMPEG;
    }
  });

  it('honours an AbortSignal', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(decodeVideo(video, {}, { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    // Aborting while ffmpeg runs kills the child and rejects promptly.
    const running = new AbortController();
    const pending = decodeVideo(video, {}, { signal: running.signal });
    setImmediate(() => running.abort());
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED' });
  });
});
