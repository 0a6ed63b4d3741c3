/**
 * Decoding the sampled frames of a video, an image or a folder of frame images to RGB. Frames come from ffmpeg as
 * raw rgb24 over a pipe and never touch the disk; only the sampled frames are kept, so memory is bounded by
 * (sampled frames × frame bytes), which is checked before decoding starts.
 */
import { readdirSync, statSync, existsSync } from 'node:fs';
import { extname, join } from 'node:path';
import { parseConfig } from '@bvllm/core';
import { ResolutionLimitError, VideoDecodeError } from './errors.js';
import { runFfmpeg } from './ffmpeg.js';
import { probeImage } from './image-size.js';
import { ffmpegInput } from './media-format.js';
import { DEFAULT_MAX_PIXELS, parseHeader, probeVideo, reportsCorruption } from './probe.js';
import { sampleFrameIndices, samplingOptionsSchema, type SamplingInput } from './sampling.js';

/** Sampled frames of one video, in ascending time. */
export interface DecodedVideo {
  /** One interleaved RGB uint8 image per frame, row-major, `height × width × 3` bytes each. Length T. */
  frames: Uint8Array[];
  width: number;
  height: number;
  /** Seconds from the start of the video of each frame (frame index / fps). Length T. */
  timestampsSec: number[];
  /** Index of each frame in the source (frame number, or position in the sorted folder). Length T. */
  frameIndices: number[];
}

export interface DecodeOptions {
  signal?: AbortSignal;
  /** Refuse frames larger than this (default 8192²). */
  maxPixels?: number;
  /** Refuse a sampling whose frames would take more bytes than this (default 2 GiB). */
  maxBytes?: number;
  /** Wall-clock limit for one ffmpeg run (default 10 min + 1 s per second of video). */
  timeoutMs?: number;
  /** Kill ffmpeg when no frame bytes arrived for this long (default 30 s). */
  idleTimeoutMs?: number;
  /**
   * Images only: a picture larger than this many pixels is scaled down by ffmpeg (aspect kept) to fit, so the
   * CLIP resize that follows on the event loop stays short. Default: no scaling.
   */
  fitPixels?: number;
}

/**
 * The size ffmpeg should scale a `width × height` frame to so it holds at most `fitPixels` pixels, aspect kept
 * (both sides even, as yuv420p needs); undefined when it already fits.
 */
export function fitWithin(width: number, height: number, fitPixels: number): { width: number; height: number } | undefined {
  if (width * height <= fitPixels) return undefined;
  const scale = Math.sqrt(fitPixels / (width * height));
  const even = (n: number) => Math.max(2, 2 * Math.floor((n * scale) / 2));
  return { width: even(width), height: even(height) };
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.bmp']);
/** Frame folders carry no rate; the reference assumes 3 fps (`mm_utils.py:163-166`, spec §3). */
export const FRAME_FOLDER_FPS = 3;
/** GIFs are sampled as 25 fps whatever their own rate, as in the reference. */
export const GIF_FPS = 25;
const DEFAULT_MAX_BYTES = 2 * 1024 ** 3;

export function isImageFile(path: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(path).toLowerCase());
}

/** Decodes the frames `sampling` picks from a video file, an image (one frame) or a folder of frame images. */
export async function decodeVideo(path: string, sampling: SamplingInput = {}, options: DecodeOptions = {}): Promise<DecodedVideo> {
  const opts = parseConfig(samplingOptionsSchema, sampling, 'sampling options');
  if (!existsSync(path)) throw new VideoDecodeError(path, 'file does not exist');
  if (statSync(path).isDirectory()) return decodeFolder(path, sampling, options);
  if (isImageFile(path)) {
    const image = await decodeImage(path, options);
    return { frames: [image.rgb], width: image.width, height: image.height, timestampsSec: [0], frameIndices: [0] };
  }
  const info = await probeVideo(path, options);
  // The reference reads GIFs with imageio and assumes 25 fps for them (mm_utils.py:167-172, spec §3).
  const fps = extname(path).toLowerCase() === '.gif' ? GIF_FPS : info.fps;
  const indices = sampleFrameIndices(info.numFrames, fps, opts);
  const frameBytes = info.width * info.height * 3;
  checkBudget(path, indices.length, frameBytes, options);
  const wanted = new Map<number, number[]>();
  indices.forEach((frame, slot) => wanted.set(frame, [...(wanted.get(frame) ?? []), slot]));
  const last = indices[indices.length - 1];
  const frames: Uint8Array[] = new Array(indices.length);
  let current = Buffer.allocUnsafe(frameBytes);
  let filled = 0;
  let frameNumber = 0;
  const run = await runFfmpeg(
    ['-loglevel', 'error', '-noautorotate', ...ffmpegInput(path), '-map', '0:v:0', '-an', '-vsync', '0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'],
    {
      timeoutMs: options.timeoutMs ?? 600_000 + 1000 * info.durationSec,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      signal: options.signal,
      onStdout: (chunk) => {
        let offset = 0;
        while (offset < chunk.length) {
          const n = Math.min(chunk.length - offset, frameBytes - filled);
          chunk.copy(current, filled, offset, offset + n);
          filled += n;
          offset += n;
          if (filled < frameBytes) break;
          const slots = wanted.get(frameNumber);
          if (slots) {
            const frame = new Uint8Array(current.buffer, current.byteOffset, frameBytes);
            for (const slot of slots) frames[slot] = frame;
            current = Buffer.allocUnsafe(frameBytes);
          }
          filled = 0;
          frameNumber++;
          if (frameNumber > last) return 'stop';
        }
      },
    },
  );
  if (run.spawnError) throw new VideoDecodeError(path, `cannot run ffmpeg (${run.spawnError.message})`, '', { cause: run.spawnError });
  if (run.timedOut) throw new VideoDecodeError(path, 'ffmpeg was killed: it stalled or ran past its time limit', run.stderr);
  if (frameNumber <= last) {
    const reason = /decoder[^\n]*not found|unsupported codec|no decoder/i.test(run.stderr)
      ? `unsupported codec "${info.codec}"`
      : `the stream broke off after ${frameNumber} of ${info.numFrames} frames (frame ${last} was needed)`;
    throw new VideoDecodeError(path, reason, run.stderr);
  }
  if (reportsCorruption(run.stderr, path)) throw new VideoDecodeError(path, 'the stream is corrupt: ffmpeg reported decoding errors', run.stderr);
  if (!run.stopped && run.code !== 0) throw new VideoDecodeError(path, `ffmpeg failed with exit code ${run.code}`, run.stderr);
  return { frames, width: info.width, height: info.height, timestampsSec: indices.map((i) => i / fps), frameIndices: indices };
}

/** Decodes one image file to RGB (ffmpeg's image demuxers: jpg, png, webp, bmp). */
export async function decodeImage(path: string, options: DecodeOptions = {}): Promise<{ rgb: Uint8Array; width: number; height: number }> {
  if (!existsSync(path)) throw new VideoDecodeError(path, 'file does not exist');
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  // From the header, before ffmpeg runs: its image decoders decode the whole picture before they stop.
  const declared = probeImage(path, { maxPixels });
  const fit = options.fitPixels === undefined ? undefined : fitWithin(declared.width, declared.height, options.fitPixels);
  const maxBytes = maxPixels * 3;
  const chunks: Buffer[] = [];
  let total = 0;
  let tooLarge = false;
  const scale = fit ? ['-vf', `scale=${fit.width}:${fit.height}:flags=bicubic`] : [];
  const run = await runFfmpeg([...ffmpegInput(path), '-frames:v', '1', ...scale, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], {
    timeoutMs: options.timeoutMs ?? 60_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
    signal: options.signal,
    onStdout: (chunk) => {
      total += chunk.length;
      if (total > maxBytes) {
        tooLarge = true;
        return 'stop';
      }
      chunks.push(chunk);
    },
  });
  if (run.spawnError) throw new VideoDecodeError(path, `cannot run ffmpeg (${run.spawnError.message})`, '', { cause: run.spawnError });
  if (run.timedOut) throw new VideoDecodeError(path, 'ffmpeg was killed: it stalled or ran past its time limit', run.stderr);
  const header = parseHeader(path, run.stderr);
  if (tooLarge || header.width * header.height > maxPixels) throw new ResolutionLimitError(path, header.width, header.height, maxPixels);
  const { width, height } = fit ?? header;
  const rgb = new Uint8Array(Buffer.concat(chunks));
  if (run.code !== 0 || rgb.length !== width * height * 3)
    throw new VideoDecodeError(path, `the image decoded to ${rgb.length} bytes, expected ${width * height * 3} for ${width}x${height}`, run.stderr);
  return { rgb, width, height };
}

/** A folder of frame images, sorted by name, sampled as a video at {@link FRAME_FOLDER_FPS}. */
async function decodeFolder(dir: string, sampling: SamplingInput, options: DecodeOptions): Promise<DecodedVideo> {
  const files = readdirSync(dir)
    .filter((f) => isImageFile(f))
    .sort();
  if (files.length === 0) throw new VideoDecodeError(dir, 'the folder holds no frame images (jpg, png, webp, bmp)');
  const indices = sampleFrameIndices(files.length, FRAME_FOLDER_FPS, parseConfig(samplingOptionsSchema, sampling, 'sampling options'));
  const decoded = new Map<number, { rgb: Uint8Array; width: number; height: number }>();
  for (const i of new Set(indices)) {
    const image = await decodeImage(join(dir, files[i]), options);
    const first = decoded.values().next().value;
    if (first && (first.width !== image.width || first.height !== image.height))
      throw new VideoDecodeError(join(dir, files[i]), `frame is ${image.width}x${image.height}, the folder's first frame is ${first.width}x${first.height}`);
    decoded.set(i, image);
    checkBudget(dir, decoded.size, image.width * image.height * 3, options);
  }
  const first = decoded.get(indices[0])!;
  return {
    frames: indices.map((i) => decoded.get(i)!.rgb),
    width: first.width,
    height: first.height,
    timestampsSec: indices.map((i) => i / FRAME_FOLDER_FPS),
    frameIndices: indices,
  };
}

function checkBudget(path: string, count: number, frameBytes: number, options: DecodeOptions): void {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (count * frameBytes > maxBytes)
    throw new VideoDecodeError(path, `${count} sampled frames of ${frameBytes} bytes exceed the decode budget of ${maxBytes} bytes; lower maxFrames`);
}
