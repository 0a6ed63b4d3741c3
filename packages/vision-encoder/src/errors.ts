import { BvllmError } from '@bvllm/core';

/**
 * A video or image could not be decoded: missing file, not a video, no frames, a stream that breaks off, an
 * unsupported codec, an absurd resolution, a timeout. Names the file and the cause; `stderr` is the tail of
 * ffmpeg's diagnostics when ffmpeg was involved, so the user sees what ffmpeg saw.
 */
export class VideoDecodeError extends BvllmError {
  constructor(
    readonly file: string,
    readonly reason: string,
    readonly stderr = '',
    options?: { cause?: unknown },
  ) {
    super('VIDEO_DECODE', `${file}: cannot decode: ${reason}${stderr ? `\nffmpeg said:\n${excerpt(stderr)}` : ''}`, options);
  }
}

/** The last few non-empty lines of ffmpeg's stderr: the error is nearly always at the end. */
function excerpt(stderr: string, lines = 6): string {
  return stderr
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .slice(-lines)
    .map((l) => `  ${l}`)
    .join('\n');
}
