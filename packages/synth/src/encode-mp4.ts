/**
 * Writing RGB frames to an H.264 mp4 by piping raw bytes into ffmpeg's stdin. Frames are produced lazily and written
 * only as fast as ffmpeg reads them (backpressure), so a 10-minute video never sits in memory.
 */
import { spawn } from 'node:child_process';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { AbortedError, InvalidArgumentError } from '@bvllm/core';
import { VideoEncodeError } from './errors.js';

/** The ffmpeg binary: `BVLLM_FFMPEG` if set, else the static build of `@ffmpeg-installer/ffmpeg`. */
export function ffmpegPath(): string {
  return process.env.BVLLM_FFMPEG || (ffmpegInstaller as { path: string }).path;
}

export interface EncodeOptions {
  /** Frame width and height, pixels; both even (yuv420p). */
  width: number;
  height: number;
  fps: number;
  /** libx264 constant rate factor. */
  crf: number;
  signal?: AbortSignal;
}

/** Only the tail of stderr is kept: the fatal message is at the end, and a broken run can print a line per frame. */
const STDERR_TAIL = 8 * 1024;

/**
 * Encodes `frames` (each `[height, width, 3]` uint8 RGB, row-major) to `file` as H.264 yuv420p. Settings that make
 * the bytes reproducible: one encoder thread, bit-exact muxing, no metadata.
 * Throws {@link VideoEncodeError} with ffmpeg's stderr when ffmpeg fails or cannot start.
 */
export async function encodeMp4(file: string, frames: Iterable<Uint8Array>, options: EncodeOptions): Promise<void> {
  const { width, height, fps, crf, signal } = options;
  if (signal?.aborted) throw new AbortedError(`encoding ${file}`);
  const frameBytes = width * height * 3;
  const bin = ffmpegPath();
  const child = spawn(
    bin,
    [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', String(fps), '-i', '-',
      '-c:v', 'libx264', '-preset', 'veryfast', '-crf', String(crf), '-pix_fmt', 'yuv420p', '-threads', '1',
      '-map_metadata', '-1', '-fflags', '+bitexact', '-flags:v', '+bitexact', '-movflags', '+faststart',
      file,
    ],
    { stdio: ['pipe', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
    if (stderr.length > 2 * STDERR_TAIL) stderr = stderr.slice(-STDERR_TAIL);
  });
  // EPIPE when ffmpeg exits early: the exit status below reports the real cause.
  child.stdin.on('error', () => {});
  let ended = false;
  let spawnError: Error | undefined;
  const finished = new Promise<number | null>((resolve) => {
    child.once('error', (error) => {
      spawnError = error;
      ended = true;
      resolve(null);
    });
    child.once('close', (code) => {
      ended = true;
      resolve(code);
    });
  });
  const onAbort = () => child.kill('SIGKILL');
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (const frame of frames) {
      if (ended || signal?.aborted) break;
      if (frame.length !== frameBytes) {
        throw new InvalidArgumentError('frames', `${file}: a frame has ${frame.length} bytes, expected ${width}×${height}×3 = ${frameBytes}`);
      }
      if (!child.stdin.write(frame)) {
        await Promise.race([new Promise<void>((resolve) => child.stdin.once('drain', resolve)), finished]);
      }
    }
    child.stdin.end();
    const code = await finished;
    if (signal?.aborted) throw new AbortedError(`encoding ${file}`);
    if (spawnError) throw new VideoEncodeError(file, `cannot start ffmpeg (${bin}): ${spawnError.message}`, '', { cause: spawnError });
    if (code !== 0) throw new VideoEncodeError(file, `ffmpeg (${bin}) exited with ${code === null ? 'a signal' : `code ${code}`}`, stderr);
  } catch (error) {
    // A bad frame or a throwing frame source must not leave ffmpeg waiting on its stdin.
    if (!ended) child.kill('SIGKILL');
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
