import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortedError } from '@bvllm/core';
import { UnsupportedMediaError, VideoDecodeError, decodeVideo, ffmpegPath, fitWithin } from '@bvllm/vision-encoder';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHUNK_PIXELS, EXACT_MAX_PIXELS, openFrameStream } from './frame-stream.js';

// issue #18 item 4: decoding streams in chunks, with decodeVideo's sampling (spec §3: 1 fps, frame folders at 3 fps).
let dir: string;
let video: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bvllm-frames-'));
  video = join(dir, 'v.mp4');
  execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=48x32:rate=5', '-t', '7', '-pix_fmt', 'yuv420p', video]);
  const frames = join(dir, 'frames');
  mkdirSync(frames);
  execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=16x16:rate=3', '-t', '2', join(frames, 'f%03d.png')]);
});

async function collect(path: string, size: number, sampling = {}) {
  const stream = await openFrameStream(path, sampling);
  const sizes: number[] = [];
  const frames: Uint8Array[] = [];
  for await (const chunk of stream.chunks(size)) {
    sizes.push(chunk.frames.length);
    frames.push(...chunk.frames);
  }
  return { stream, sizes, frames };
}

describe('openFrameStream', () => {
  it('yields the same frames, timestamps and indices as decodeVideo, at most `size` per chunk', async () => {
    for (const [path, sampling] of [[video, {}], [video, { mode: 'uniform', numFrames: 4 }], [join(dir, 'frames'), {}]] as const) {
      const whole = await decodeVideo(path, sampling);
      const { stream, sizes, frames } = await collect(path, 3, sampling);
      expect(stream.timestampsSec).toEqual(whole.timestampsSec);
      expect(stream.frameIndices).toEqual(whole.frameIndices);
      expect(sizes.every((n) => n <= 3)).toBe(true);
      expect(frames.length).toBe(whole.frames.length);
      frames.forEach((f, i) => expect(Buffer.from(f).equals(Buffer.from(whole.frames[i]!))).toBe(true));
    }
  });

  it('an image is one frame; a missing file is a VideoDecodeError, text or a playlist is refused before ffmpeg; an abort stops decoding', async () => {
    const png = join(dir, 'frames', 'f001.png');
    const { stream, frames } = await collect(png, 8);
    expect(stream.timestampsSec).toEqual([0]);
    expect(frames).toHaveLength(1);
    await expect(openFrameStream(join(dir, 'nope.mp4'))).rejects.toThrow(VideoDecodeError);
    writeFileSync(join(dir, 'broken.mp4'), 'not a video');
    await expect(collect(join(dir, 'broken.mp4'), 2)).rejects.toThrow(UnsupportedMediaError);
    // A playlist naming a real video: ffmpeg's hls demuxer would open it (issue #20 item 1).
    writeFileSync(join(dir, 'playlist.mp4'), `#EXTM3U\n#EXTINF:1,\n${video}\n#EXT-X-ENDLIST\n`);
    await expect(collect(join(dir, 'playlist.mp4'), 2)).rejects.toMatchObject({ code: 'MEDIA_UNSUPPORTED', kind: 'an HLS playlist' });
    const controller = new AbortController();
    const chunks = (await openFrameStream(video)).chunks(1, controller.signal);
    await chunks.next();
    controller.abort();
    await expect(chunks.next()).rejects.toThrow(AbortedError);
  });
});

// issue #20 item 2: the CLIP resize after a chunk runs on the event loop, so big frames are scaled by ffmpeg and a
// chunk holds at most CHUNK_PIXELS of them.
describe('openFrameStream bounds for large frames', () => {
  it('scales frames over EXACT_MAX_PIXELS in ffmpeg and yields one 1440p frame per chunk', async () => {
    const big = join(dir, 'big.mp4');
    execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=2560x1440:rate=2', '-t', '3', '-pix_fmt', 'yuv420p', big]);
    const stream = await openFrameStream(big);
    const chunks: { n: number; width: number; height: number; bytes: number }[] = [];
    for await (const chunk of stream.chunks(8)) chunks.push({ n: chunk.frames.length, width: chunk.width, height: chunk.height, bytes: chunk.frames[0].length });
    const fit = fitWithin(2560, 1440, EXACT_MAX_PIXELS)!;
    expect(chunks).toEqual(stream.timestampsSec.map(() => ({ n: 1, width: fit.width, height: fit.height, bytes: fit.width * fit.height * 3 })));
    expect(fit.width * fit.height).toBeLessThanOrEqual(CHUNK_PIXELS);
  });

  it('keeps frames up to 1080p as decoded', async () => {
    const { sizes } = await collect(video, 3);
    expect(sizes).toEqual([3, 3, 1]);
  });
});
