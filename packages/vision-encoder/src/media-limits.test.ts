/**
 * Limits that must hold before any frame is decoded (issue #20 items 2 and 5): the pixel limit from the header of
 * images and videos (ffmpeg is watched through a logging wrapper: the refused files never reach a decoding run),
 * frame rates of 1000 fps and more, and ffmpeg-side scaling of large stills. All media are made by ffmpeg.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, decodeVideo, fitWithin } from './decode.js';
import { ResolutionLimitError } from './errors.js';
import { ffmpegPath } from './ffmpeg.js';
import { probeImage, readImageSize } from './image-size.js';
import { parseRate, probeVideo } from './probe.js';
import { tempDir } from './test-videos.js';

let dir: string;
let log: string;
let wrapper: string;
const ffmpeg = (...args: string[]) => execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', ...args]);

beforeAll(() => {
  dir = tempDir();
  // The real ffmpeg behind a script that records each command line, one per line.
  log = join(dir, 'ffmpeg.log');
  wrapper = join(dir, 'ffmpeg-logged.sh');
  writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> '${log}'\nexec '${ffmpegPath()}' "$@"\n`);
  chmodSync(wrapper, 0o755);
});

/** Runs `body` with ffmpeg behind the logging wrapper; returns the command lines it ran. */
async function watched(body: () => Promise<unknown>): Promise<string[]> {
  writeFileSync(log, '');
  process.env.BVLLM_FFMPEG = wrapper;
  try {
    await body().catch(() => undefined);
  } finally {
    delete process.env.BVLLM_FFMPEG;
  }
  return readFileSync(log, 'utf8').split('\n').filter(Boolean);
}

afterEach(() => {
  delete process.env.BVLLM_FFMPEG;
});

describe('frame rates as ffmpeg prints them', () => {
  it('reads the k suffix of print_fps', () => {
    expect(parseRate('h264, yuv420p, 32x32, 1k fps, 1k tbr, 16k tbn', 'fps')).toBe(1000);
    expect(parseRate('h264, yuv420p, 32x32, 240k tbr, 240k tbn', 'tbr')).toBe(240_000);
    expect(parseRate('h264, yuv420p, 32x32, 29.97 fps, 29.97 tbr', 'fps')).toBe(29.97);
    expect(parseRate('h264, yuv420p, 32x32, 1200 fps, 1200 tbr', 'fps')).toBe(1200);
    expect(parseRate('h264, yuv420p, 32x32, 90k tbn', 'fps')).toBeUndefined();
  });

  it('probes and samples a 1000 fps video at 1 fps', async () => {
    const path = join(dir, 'fast.mp4');
    ffmpeg('-f', 'lavfi', '-i', 'testsrc=s=32x32:r=1000:d=2', '-pix_fmt', 'yuv420p', path);
    const info = await probeVideo(path);
    expect(info.fps).toBe(1000);
    expect(info.numFrames).toBe(2000);
    const video = await decodeVideo(path);
    // One frame from the middle of each second (spec §3).
    expect(video.frameIndices).toEqual([500, 1500]);
    expect(video.timestampsSec).toEqual([0.5, 1.5]);
  });
});

describe('the pixel limit, from the header', () => {
  it('reads the declared size of png, jpeg, webp, bmp and gif', () => {
    for (const ext of ['png', 'jpg', 'webp', 'bmp', 'gif']) {
      const path = join(dir, `odd.${ext}`);
      ffmpeg('-f', 'lavfi', '-i', 'testsrc=s=37x23', '-frames:v', '1', path);
      expect(readImageSize(path), ext).toEqual({ width: 37, height: 23 });
    }
    // Lossless WebP has its own header (VP8L).
    const lossless = join(dir, 'lossless.webp');
    ffmpeg('-f', 'lavfi', '-i', 'testsrc=s=41x19', '-frames:v', '1', '-lossless', '1', lossless);
    expect(readImageSize(lossless)).toEqual({ width: 41, height: 19 });
  });

  it('refuses a 16000² PNG without running ffmpeg', async () => {
    const path = join(dir, 'bomb.png');
    ffmpeg('-f', 'lavfi', '-i', 'color=c=black:s=16000x16000', '-frames:v', '1', '-pix_fmt', 'monob', path);
    expect(() => probeImage(path)).toThrow(ResolutionLimitError);
    let error: unknown;
    const runs = await watched(() => decodeImage(path).catch((e: unknown) => ((error = e), undefined)));
    expect(error).toBeInstanceOf(ResolutionLimitError);
    expect(error).toMatchObject({ code: 'VIDEO_DECODE', width: 16000, height: 16000, reason: 'resolution 16000x16000 exceeds the limit of 67108864 pixels' });
    expect(runs).toEqual([]);
  });

  it('refuses an 8192² H.264 from its declared size, before ffmpeg decodes a frame', async () => {
    const path = join(dir, 'bomb.mp4');
    ffmpeg('-f', 'lavfi', '-i', 'color=c=red:s=8192x8192:r=1:d=2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', path);
    let error: unknown;
    const runs = await watched(() => probeVideo(path, { maxPixels: 4096 * 4096 }).catch((e: unknown) => ((error = e), undefined)));
    expect(error).toBeInstanceOf(ResolutionLimitError);
    expect(error).toMatchObject({ width: 8192, height: 8192, maxPixels: 4096 * 4096 });
    // One run, and that one skips every frame.
    expect(runs).toHaveLength(1);
    expect(runs[0]).toContain('-skip_frame all');
  });
});

describe('ffmpeg-side scaling of large stills', () => {
  it('fitWithin keeps the aspect and even sides', () => {
    expect(fitWithin(640, 480, 640 * 480)).toBeUndefined();
    expect(fitWithin(4000, 3000, 1_000_000)).toEqual({ width: 1154, height: 866 });
  });

  it('decodes an image over fitPixels at the fitted size, and one under it untouched', async () => {
    const path = join(dir, 'large.png');
    ffmpeg('-f', 'lavfi', '-i', 'testsrc=s=400x300', '-frames:v', '1', path);
    const scaled = await decodeImage(path, { fitPixels: 30_000 });
    expect({ width: scaled.width, height: scaled.height }).toEqual(fitWithin(400, 300, 30_000));
    expect(scaled.rgb.length).toBe(scaled.width * scaled.height * 3);
    const whole = await decodeImage(path, { fitPixels: 400 * 300 });
    expect({ width: whole.width, height: whole.height }).toEqual({ width: 400, height: 300 });
  });
});
