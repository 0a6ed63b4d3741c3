import { BvllmError, stderrExcerpt } from '@bvllm/core';

/**
 * ffmpeg could not write a benchmark video: it did not start, or exited with an error. Names the file and carries
 * the tail of ffmpeg's stderr (code `VIDEO_ENCODE`).
 */
export class VideoEncodeError extends BvllmError {
  constructor(
    readonly file: string,
    readonly reason: string,
    readonly stderr = '',
    options?: { cause?: unknown },
  ) {
    super('VIDEO_ENCODE', `${file}: cannot encode video: ${reason}${stderr ? `\nffmpeg said:\n${stderrExcerpt(stderr)}` : ''}`, options);
  }
}

