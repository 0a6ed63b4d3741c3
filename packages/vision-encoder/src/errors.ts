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


/**
 * A file is not one of the containers ffmpeg may open (see `media-format.ts`): a playlist, a concat list, text or
 * an unknown format. Refused before ffmpeg runs, because those demuxers open the files they name. `kind` says what
 * the head looked like (`an HLS playlist`, `text`, …) and names no path, so a server can show it to clients.
 */
export class UnsupportedMediaError extends BvllmError {
  constructor(
    readonly file: string,
    readonly kind: string,
  ) {
    super('MEDIA_UNSUPPORTED', `${file}: not an allowed media format (${kind}); allowed: mp4/mov, webm/mkv, avi, MPEG-TS/PS, gif, png, jpeg, webp, bmp`);
  }

  /** The refusal without the file name. */
  get reason(): string {
    return `not an allowed media format (${this.kind}); allowed: mp4/mov, webm/mkv, avi, MPEG-TS/PS, gif, png, jpeg, webp, bmp`;
  }
}
