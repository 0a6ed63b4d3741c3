/** Test helper: decode an mp4 back to packed RGB frames with the same ffmpeg the encoder uses. */
import { spawnSync } from 'node:child_process';
import { ffmpegPath } from '../encode-mp4.js';

export function decodeRgbFrames(file: string, size: number): Uint8Array[] {
  const run = spawnSync(ffmpegPath(), ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    maxBuffer: 1 << 30,
  });
  if (run.status !== 0) throw new Error(`ffmpeg could not decode ${file}: ${run.stderr.toString()}`);
  const bytes = size * size * 3;
  const frames: Uint8Array[] = [];
  for (let offset = 0; offset + bytes <= run.stdout.length; offset += bytes) frames.push(new Uint8Array(run.stdout.subarray(offset, offset + bytes)));
  return frames;
}

/** The RGB triple at pixel (x, y) of a packed frame. */
export function pixelAt(frame: Uint8Array, size: number, x: number, y: number): [number, number, number] {
  const p = (Math.floor(y) * size + Math.floor(x)) * 3;
  return [frame[p], frame[p + 1], frame[p + 2]];
}
