/**
 * What a video is before any frame is decoded: size, frame rate, duration and the exact frame count. Read from
 * `ffmpeg -i` diagnostics (ffprobe is not shipped by @ffmpeg-installer), then a stream-copy pass that counts
 * packets without decoding them, as decord's `len(VideoReader)` counts its index.
 */
import { existsSync, statSync } from 'node:fs';
import { ResolutionLimitError, VideoDecodeError } from './errors.js';
import { runFfmpeg } from './ffmpeg.js';
import { ffmpegInput } from './media-format.js';

export interface VideoInfo {
  path: string;
  width: number;
  height: number;
  /** Average frame rate, frames per second (decord `get_avg_fps`). */
  fps: number;
  /** Container duration in seconds (0 when ffmpeg reports N/A, as for a single image). */
  durationSec: number;
  /** Frames in the first video stream, counted exactly. */
  numFrames: number;
  /** ffmpeg's codec name of the video stream (`h264`, `vp9`, `mjpeg`, …). */
  codec: string;
}

export interface ProbeOptions {
  /** Frames larger than this many pixels are refused before decoding, so a hostile file cannot exhaust memory. */
  maxPixels?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** ffmpeg's wording for a damaged container or stream. */
const CORRUPT = /partial file|Invalid data found|corrupt|Error while decoding|error reading header/i;

/** Whether ffmpeg's stderr about `path` reports damage; the path itself is left out (`/data/corrupt-clips/a.mp4`). */
export function reportsCorruption(stderr: string, path: string): boolean {
  return CORRUPT.test(stderr.split(path).join(''));
}

/** 8192 × 8192: larger than any real video frame, small enough that one RGB frame stays under 200 MB. */
export const DEFAULT_MAX_PIXELS = 8192 * 8192;

/**
 * The frame size the container declares, read with every frame skipped: plain `ffmpeg -i` decodes a frame to
 * learn the pixel format (168 MB and 0.4 s for an 8192² H.264), so the pixel limit is checked before that.
 * Undefined when this pass shows no size; the full header read then decides.
 */
async function declaredSize(input: string[], options: { timeoutMs: number; signal?: AbortSignal }): Promise<{ width: number; height: number } | undefined> {
  const run = await runFfmpeg(['-skip_frame', 'all', ...input], options);
  const stream = /Stream #\d+:\d+[^:]*: Video: ([^\n]*)/.exec(run.stderr);
  const size = stream && /,\s*(\d{1,6})x(\d{1,6})[\s,[]/.exec(`${stream[1]} `);
  return size ? { width: Number(size[1]), height: Number(size[2]) } : undefined;
}

/** Reads size, frame rate, duration and frame count of `path`; throws {@link VideoDecodeError} for anything unusable. */
export async function probeVideo(path: string, options: ProbeOptions = {}): Promise<VideoInfo> {
  if (!existsSync(path)) throw new VideoDecodeError(path, 'file does not exist');
  if (!statSync(path).isFile()) throw new VideoDecodeError(path, 'not a regular file');
  const timeoutMs = options.timeoutMs ?? 60_000;
  const input = ffmpegInput(path);
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const declared = await declaredSize(input, { timeoutMs, signal: options.signal });
  if (declared && declared.width * declared.height > maxPixels) throw new ResolutionLimitError(path, declared.width, declared.height, maxPixels);
  const header = await runFfmpeg(input, { timeoutMs, signal: options.signal });
  if (header.spawnError) throw new VideoDecodeError(path, `cannot run ffmpeg (${header.spawnError.message})`, '', { cause: header.spawnError });
  if (header.timedOut) throw new VideoDecodeError(path, `ffmpeg was killed after ${timeoutMs} ms reading the header`, header.stderr);
  const info = parseHeader(path, header.stderr);
  if (info.width * info.height > maxPixels) throw new ResolutionLimitError(path, info.width, info.height, maxPixels);
  const count = await runFfmpeg([...input, '-map', '0:v:0', '-c', 'copy', '-f', 'null', '-'], { timeoutMs, signal: options.signal });
  if (count.timedOut) throw new VideoDecodeError(path, `ffmpeg was killed after ${timeoutMs} ms counting frames`, count.stderr);
  const frames = [...count.stderr.matchAll(/frame=\s*(\d+)/g)].at(-1);
  const numFrames = frames ? Number(frames[1]) : 0;
  if (count.code !== 0 && numFrames === 0) throw new VideoDecodeError(path, 'the video stream cannot be read', count.stderr);
  if (numFrames === 0) throw new VideoDecodeError(path, 'the video stream has zero frames', count.stderr);
  // The copy pass reads every packet, so a file cut off mid-way (or with a broken index) shows up here, before
  // any frame is decoded, even when the frames a sampling needs happen to lie before the damage.
  if (reportsCorruption(count.stderr, path)) throw new VideoDecodeError(path, `the stream is corrupt or truncated (${numFrames} readable frames)`, count.stderr);
  return { ...info, numFrames };
}

/** Size, rate, duration and codec from `ffmpeg -i` stderr; throws when it shows no decodable video stream. */
export function parseHeader(path: string, stderr: string): Omit<VideoInfo, 'numFrames'> {
  if (/unknown codec|Decoder \(codec [^)]*\) not found|Unsupported codec/i.test(stderr)) {
    const tag = /Video: ([\w-]+)(?: \((\w+) \/)?/.exec(stderr);
    throw new VideoDecodeError(path, `unsupported codec "${tag?.[2] ?? tag?.[1] ?? 'unknown'}"`, stderr);
  }
  if (/Invalid data found when processing input|moov atom not found|could not find codec parameters/i.test(stderr))
    throw new VideoDecodeError(path, 'not a video (the container cannot be parsed)', stderr);
  const stream = /Stream #\d+:\d+[^:]*: Video: ([^\n]*)/.exec(stderr);
  if (!stream) throw new VideoDecodeError(path, /Input #0/.test(stderr) ? 'the file has no video stream (or it has zero frames)' : 'not a video', stderr);
  const line = stream[1];
  const codec = /^([\w-]+)/.exec(line)?.[1] ?? 'unknown';
  // The size is the first WxH after the pixel format; "0x31637661" style codec tags have no digits before the x.
  const size = /,\s*(\d{1,6})x(\d{1,6})[\s,[]/.exec(`${line} `);
  if (!size) throw new VideoDecodeError(path, 'the video stream has no frame size (unsupported or broken codec)', stderr);
  const width = Number(size[1]);
  const height = Number(size[2]);
  if (width === 0 || height === 0) throw new VideoDecodeError(path, `the video stream has an empty frame size ${width}x${height}`, stderr);
  const fps = parseRate(line, 'fps') ?? parseRate(line, 'tbr') ?? 0;
  const d = /Duration: (\d+):(\d+):([\d.]+)/.exec(stderr);
  const durationSec = d ? Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3]) : 0;
  return { path, width, height, fps, durationSec, codec };
}

/**
 * A rate as ffmpeg prints it (`print_fps` in libavformat/dump.c): `29.97 fps`, `25 fps`, `0.0417 fps`, and whole
 * thousands with a `k` suffix, `1k fps` for 1000 and `240k tbr` for 240000 (read as 0 before, which refused every
 * video at 1000 fps or more).
 */
export function parseRate(line: string, unit: 'fps' | 'tbr'): number | undefined {
  const match = new RegExp(`(\\d+(?:\\.\\d+)?)(k?) ${unit}\\b`).exec(line);
  if (!match) return undefined;
  return Number(match[1]) * (match[2] === 'k' ? 1000 : 1);
}
