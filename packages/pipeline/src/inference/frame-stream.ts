/**
 * A video's sampled frames in chunks (issue #18 item 4), so a long video never sits decoded in memory: vision
 * encoder's `decodeVideo` returns every sampled frame at once, which is T × H × W × 3 bytes (an hour at 1 fps of
 * 720p is 10 GB). Here ffmpeg's raw rgb24 pipe is read with backpressure: the child waits while a chunk is being
 * encoded, and only the chunk's frames are held. Sampling (frame indices, timestamps) is the same as `decodeVideo`'s
 * (`sampleFrameIndices`, GIFs at 25 fps, frame folders at 3 fps, spec §3).
 *
 * The CLIP resize that follows runs on worker threads (`ClipPool`), about 50 ms a 1080p frame, and its cost grows
 * with the frame's pixels, so two bounds keep one chunk's work and memory short (issue #20 item 2): frames over
 * {@link EXACT_MAX_PIXELS} are scaled down by ffmpeg, in its own process, to fit (1080p and smaller stay exact, as
 * the reference preprocesses them), and a chunk holds at most {@link CHUNK_PIXELS} pixels of frames (at least one
 * frame), whatever chunk size the caller asks for.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { AbortedError, parseConfig } from '@bvllm/core';
import { FRAME_FOLDER_FPS, VideoDecodeError, decodeImage, ffmpegInput, ffmpegPath, fitWithin, probeVideo, sampleFrameIndices, samplingOptionsSchema, type SamplingInput } from '@bvllm/vision-encoder';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.bmp']);
/** GIFs are sampled as 25 fps whatever their own rate, as the reference (and `decodeVideo`) does. */
const GIF_FPS = 25;
const STDERR_TAIL = 16 * 1024;

const isImage = (path: string) => IMAGE_EXTENSIONS.has(extname(path).toLowerCase());

/** Frames up to 1920 × 1088 (1080p with codec padding) reach the CLIP resize as decoded; larger ones are scaled by ffmpeg to fit. */
export const EXACT_MAX_PIXELS = 1920 * 1088;
/** Pixels of frames in one chunk: one 1080p frame, or many small ones. */
export const CHUNK_PIXELS = 1920 * 1088;

/** Frames per chunk: the caller's size, lowered so a chunk holds at most {@link CHUNK_PIXELS} pixels (never below 1). */
const chunkFrames = (size: number, width: number, height: number) => Math.max(1, Math.min(size, Math.floor(CHUNK_PIXELS / (width * height))));

/** One chunk of decoded frames: interleaved RGB uint8, `height × width × 3` bytes each. */
export interface FrameChunk {
  frames: Uint8Array[];
  width: number;
  height: number;
}

/** A video opened for chunked decoding: sampling is known up front, frames come by {@link chunks}. */
export interface FrameStream {
  /** Seconds of each sampled frame. Length T. */
  timestampsSec: number[];
  /** Source frame number of each sampled frame. Length T. */
  frameIndices: number[];
  /** Yields the T sampled frames in order, at most `size` per chunk; a chunk is not kept after the next is asked for. */
  chunks(size: number, signal?: AbortSignal): AsyncGenerator<FrameChunk>;
}

/** Opens a video file, an image (one frame) or a folder of frame images for chunked decoding. */
export async function openFrameStream(path: string, sampling: SamplingInput = {}, options: { signal?: AbortSignal } = {}): Promise<FrameStream> {
  const opts = parseConfig(samplingOptionsSchema, sampling, 'sampling options');
  if (!existsSync(path)) throw new VideoDecodeError(path, 'file does not exist');
  if (statSync(path).isDirectory()) {
    const files = readdirSync(path).filter(isImage).sort();
    if (files.length === 0) throw new VideoDecodeError(path, 'the folder holds no frame images (jpg, png, webp, bmp)');
    const indices = sampleFrameIndices(files.length, FRAME_FOLDER_FPS, opts);
    return {
      timestampsSec: indices.map((i) => i / FRAME_FOLDER_FPS),
      frameIndices: indices,
      chunks: (size, signal) => imageChunks(indices.map((i) => join(path, files[i])), size, signal),
    };
  }
  if (isImage(path)) return { timestampsSec: [0], frameIndices: [0], chunks: (size, signal) => imageChunks([path], size, signal) };
  const info = await probeVideo(path, { signal: options.signal });
  const fps = extname(path).toLowerCase() === '.gif' ? GIF_FPS : info.fps;
  const indices = sampleFrameIndices(info.numFrames, fps, opts);
  const fit = fitWithin(info.width, info.height, EXACT_MAX_PIXELS);
  const size = fit ?? { width: info.width, height: info.height };
  return {
    timestampsSec: indices.map((i) => i / fps),
    frameIndices: indices,
    // The same wall-clock limit as decodeVideo's: 10 min + 1 s per second of video (probeVideo already counted every
    // frame and refused a corrupt stream).
    chunks: (n, signal) => videoChunks(path, indices, size, fit !== undefined, chunkFrames(n, size.width, size.height), 600_000 + 1000 * info.durationSec, signal),
  };
}

async function* imageChunks(files: readonly string[], size: number, signal?: AbortSignal): AsyncGenerator<FrameChunk> {
  let first: { width: number; height: number } | undefined;
  let frames: Uint8Array[] = [];
  for (const file of files) {
    if (signal?.aborted) throw new AbortedError('video decoding');
    const image = await decodeImage(file, { signal, fitPixels: EXACT_MAX_PIXELS });
    first ??= image;
    if (image.width !== first.width || image.height !== first.height)
      throw new VideoDecodeError(file, `frame is ${image.width}x${image.height}, the folder's first frame is ${first.width}x${first.height}`);
    frames.push(image.rgb);
    if (frames.length >= chunkFrames(size, first.width, first.height)) {
      yield { frames, width: first.width, height: first.height };
      frames = [];
    }
  }
  if (frames.length) yield { frames, width: first!.width, height: first!.height };
}

async function* videoChunks(
  path: string,
  indices: readonly number[],
  { width, height }: { width: number; height: number },
  scaled: boolean,
  size: number,
  timeoutMs: number,
  signal?: AbortSignal,
): AsyncGenerator<FrameChunk> {
  if (signal?.aborted) throw new AbortedError('video decoding');
  const frameBytes = width * height * 3;
  const scale = scaled ? ['-vf', `scale=${width}:${height}:flags=bicubic`] : [];
  // How many times each source frame is wanted (sampling may repeat a frame for short videos).
  const wanted = new Map<number, number>();
  for (const i of indices) wanted.set(i, (wanted.get(i) ?? 0) + 1);
  const last = indices[indices.length - 1];
  const child = spawn(ffmpegPath(), ['-loglevel', 'error', '-noautorotate', ...ffmpegInput(path), '-map', '0:v:0', '-an', '-vsync', '0', ...scale, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_TAIL);
  });
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, error }));
    child.on('close', (code) => resolve({ code }));
  });
  const onAbort = () => child.kill('SIGKILL');
  signal?.addEventListener('abort', onAbort, { once: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  let frames: Uint8Array[] = [];
  let current = Buffer.allocUnsafe(frameBytes);
  let filled = 0;
  let frameNumber = 0;
  let done = false;
  try {
    for await (const data of child.stdout as AsyncIterable<Buffer>) {
      let offset = 0;
      while (offset < data.length && !done) {
        const n = Math.min(data.length - offset, frameBytes - filled);
        data.copy(current, filled, offset, offset + n);
        filled += n;
        offset += n;
        if (filled < frameBytes) break;
        const copies = wanted.get(frameNumber) ?? 0;
        if (copies > 0) {
          const frame = new Uint8Array(current.buffer, current.byteOffset, frameBytes);
          for (let c = 0; c < copies; c++) frames.push(frame);
          current = Buffer.allocUnsafe(frameBytes);
        }
        filled = 0;
        done = frameNumber === last;
        frameNumber++;
        // Frames past a full chunk wait in `frames` only until the consumer asks for the next chunk.
        while (frames.length >= size) {
          yield { frames: frames.slice(0, size), width, height };
          if (signal?.aborted) throw new AbortedError('video decoding');
          frames = frames.slice(size);
        }
      }
      if (done) break;
    }
    if (signal?.aborted) throw new AbortedError('video decoding');
    if (timedOut) throw new VideoDecodeError(path, 'ffmpeg was killed: it ran past its time limit', stderr);
    if (!done) {
      const { code, error } = await exited;
      if (error) throw new VideoDecodeError(path, `cannot run ffmpeg (${error.message})`, '', { cause: error });
      throw new VideoDecodeError(path, `the stream broke off after ${frameNumber} frames (frame ${last} was needed; ffmpeg exit code ${String(code)})`, stderr);
    }
    if (frames.length) yield { frames, width, height };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  }
}
