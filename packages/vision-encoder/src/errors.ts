import { BvllmError, stderrExcerpt } from '@bvllm/core';

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
    super('VIDEO_DECODE', `${file}: cannot decode: ${reason}${stderr ? `\nffmpeg said:\n${stderrExcerpt(stderr)}` : ''}`, options);
  }
}

