import { BvllmError } from '@bvllm/core';

/**
 * ffmpeg could not write a benchmark video: it did not start, or exited with an error. Names the file and carries
 * the tail of ffmpeg's stderr. Its code is `DATASET` (the benchmark could not be built); core has no encoding code
 * because nothing else in the project writes video.
 */
export class VideoEncodeError extends BvllmError {
  constructor(
    readonly file: string,
    readonly reason: string,
    readonly stderr = '',
    options?: { cause?: unknown },
  ) {
    super('DATASET', `${file}: cannot encode video: ${reason}${stderr ? `\nffmpeg said:\n${excerpt(stderr)}` : ''}`, options);
  }
}

/** The last non-empty lines of stderr: ffmpeg prints the fatal error last. */
function excerpt(stderr: string, lines = 6): string {
  return stderr
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .slice(-lines)
    .map((l) => `  ${l}`)
    .join('\n');
}
