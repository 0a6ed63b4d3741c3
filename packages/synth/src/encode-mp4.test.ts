import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '@bvllm/core';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeMp4 } from './encode-mp4.js';
import { VideoEncodeError } from './errors.js';
import { decodeRgbFrames, pixelAt } from './testing/decode-rgb.js';

const dir = mkdtempSync(join(tmpdir(), 'bvllm-synth-encode-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Frame i: left half red, right half blue, and a white bar whose row is i (so frames differ). */
function frame(size: number, i: number): Uint8Array {
  const f = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const p = (y * size + x) * 3;
      const c = y === i % size || y === (i % size) + 1 ? [245, 245, 245] : x < size / 2 ? [230, 40, 40] : [50, 90, 240];
      f.set(c, p);
    }
  return f;
}

const close = (actual: number[], expected: number[], tol: number) => actual.every((v, k) => Math.abs(v - expected[k]) <= tol);

describe('encodeMp4', () => {
  it('round-trips: ffmpeg decodes the same number of frames with the colours written', async () => {
    const file = join(dir, 'round-trip.mp4');
    await encodeMp4(file, Array.from({ length: 10 }, (_, i) => frame(32, i)), { width: 32, height: 32, fps: 4, crf: 18 });
    const frames = decodeRgbFrames(file, 32);
    expect(frames).toHaveLength(10);
    for (const f of frames) {
      expect(close(pixelAt(f, 32, 8, 28), [230, 40, 40], 24)).toBe(true);
      expect(close(pixelAt(f, 32, 24, 28), [50, 90, 240], 24)).toBe(true);
    }
  });

  it('respects backpressure: frames far larger than the pipe buffer arrive complete and in order', async () => {
    const file = join(dir, 'large.mp4');
    const size = 256; // 196 KB a frame, three times a 64 KB pipe buffer
    let produced = 0;
    function* lazy() {
      for (let i = 0; i < 40; i++) {
        produced++;
        yield frame(size, i * 4);
      }
    }
    await encodeMp4(file, lazy(), { width: size, height: size, fps: 8, crf: 18 });
    expect(produced).toBe(40);
    const frames = decodeRgbFrames(file, size);
    expect(frames).toHaveLength(40);
    // The white bar of frame 30 is at row 120: the frames kept their order.
    expect(close(pixelAt(frames[30], size, 64, 120), [245, 245, 245], 30)).toBe(true);
    expect(close(pixelAt(frames[30], size, 64, 200), [230, 40, 40], 30)).toBe(true);
  });

  it('names the file and quotes ffmpeg when ffmpeg fails', async () => {
    const file = join(dir, 'no-such-folder', 'x.mp4');
    const error = await encodeMp4(file, Array.from({ length: 20 }, (_, i) => frame(64, i)), { width: 64, height: 64, fps: 4, crf: 18 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(VideoEncodeError);
    expect((error as VideoEncodeError).code).toBe('VIDEO_ENCODE');
    expect((error as VideoEncodeError).message).toContain(file);
    expect((error as VideoEncodeError).stderr).toMatch(/No such file or directory/);
  });

  it('reports a missing ffmpeg binary (BVLLM_FFMPEG) as a VideoEncodeError', async () => {
    const saved = process.env.BVLLM_FFMPEG;
    process.env.BVLLM_FFMPEG = join(dir, 'not-ffmpeg');
    try {
      const file = join(dir, 'never.mp4');
      await expect(encodeMp4(file, [frame(32, 0)], { width: 32, height: 32, fps: 4, crf: 18 })).rejects.toThrow(/cannot start ffmpeg .*not-ffmpeg/);
    } finally {
      if (saved === undefined) delete process.env.BVLLM_FFMPEG;
      else process.env.BVLLM_FFMPEG = saved;
    }
  });

  it('rejects a frame of the wrong size before ffmpeg sees it', async () => {
    const file = join(dir, 'wrong.mp4');
    await expect(encodeMp4(file, [frame(32, 0), frame(30, 0)], { width: 32, height: 32, fps: 4, crf: 18 })).rejects.toThrow(InvalidArgumentError);
  });

  it('stops ffmpeg and passes on the error when the frame source throws', async () => {
    function* failing() {
      yield frame(32, 0);
      throw new RangeError('renderer broke');
    }
    await expect(encodeMp4(join(dir, 'broken.mp4'), failing(), { width: 32, height: 32, fps: 4, crf: 18 })).rejects.toThrow('renderer broke');
  });

  it('stops and rejects when aborted', async () => {
    const controller = new AbortController();
    function* endless() {
      for (let i = 0; ; i++) {
        if (i === 5) controller.abort();
        yield frame(64, i);
      }
    }
    const file = join(dir, 'aborted.mp4');
    await expect(encodeMp4(file, endless(), { width: 64, height: 64, fps: 4, crf: 18, signal: controller.signal })).rejects.toThrow(/aborted/);
  });

  it('writes identical bytes for identical frames (single-threaded, bit-exact)', async () => {
    const frames = Array.from({ length: 8 }, (_, i) => frame(32, i));
    await encodeMp4(join(dir, 'a.mp4'), frames, { width: 32, height: 32, fps: 4, crf: 18 });
    await encodeMp4(join(dir, 'b.mp4'), frames, { width: 32, height: 32, fps: 4, crf: 18 });
    expect(statSync(join(dir, 'a.mp4')).size).toBeGreaterThan(0);
    expect(readFileSync(join(dir, 'a.mp4')).equals(readFileSync(join(dir, 'b.mp4')))).toBe(true);
  });
});
