/**
 * Test-only helpers: small videos made with the same ffmpeg binary, so frame sampling can be checked by the
 * content of the decoded frames (one solid colour per second) rather than by indices alone.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ffmpegPath } from './ffmpeg.js';

export function tempDir(prefix = 'bvllm-ve-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** One second of each colour (ffmpeg colour names or 0xRRGGBB), concatenated, at `fps`, H.264 yuv420p. */
export function colourVideo(path: string, colours: readonly string[], options: { fps?: number; width?: number; height?: number } = {}): string {
  const { fps = 10, width = 32, height = 24 } = options;
  const inputs = colours.flatMap((c) => ['-f', 'lavfi', '-i', `color=c=${c}:s=${width}x${height}:r=${fps}:d=1`]);
  const filter = `${colours.map((_, i) => `[${i}:v]`).join('')}concat=n=${colours.length}:v=1:a=0[v]`;
  execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', ...inputs, '-filter_complex', filter, '-map', '[v]', '-pix_fmt', 'yuv420p', path]);
  return path;
}

/** ffmpeg's `testsrc` pattern (busy content, so a cut file loses real data), every frame a keyframe, index up front. */
export function patternVideo(path: string, seconds: number, options: { fps?: number; width?: number; height?: number } = {}): string {
  const { fps = 10, width = 128, height = 96 } = options;
  execFileSync(ffmpegPath(), [
    '-y', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc=s=${width}x${height}:r=${fps}:d=${seconds}`,
    '-g', '1', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', path,
  ]);
  return path;
}

/** Writes raw RGB as an image file (format from the extension). */
export function writeImage(path: string, rgb: Uint8Array, width: number, height: number): string {
  execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-i', 'pipe:0', '-frames:v', '1', path], { input: rgb });
  return path;
}

/** Mean RGB of a frame, to read back the solid colour of a sampled frame. */
export function meanColour(rgb: Uint8Array): [number, number, number] {
  const sum = [0, 0, 0];
  for (let i = 0; i < rgb.length; i++) sum[i % 3] += rgb[i];
  const n = rgb.length / 3;
  return [sum[0] / n, sum[1] / n, sum[2] / n];
}
