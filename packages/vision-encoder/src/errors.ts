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

/**
 * A frame is larger than the pixel limit, found from the file's header before any frame was decoded (a 16000²
 * PNG is 768 MB of RGB; a 265 KB 8192² H.264 decodes to 200 MB a frame). A `VideoDecodeError` (code
 * `VIDEO_DECODE`) whose `reason` names the size and the limit but not the file, so a server can show it; `width`,
 * `height` and `maxPixels` let it answer with its own wording.
 */
export class ResolutionLimitError extends VideoDecodeError {
  /** Tells this refusal apart from other decode failures when read by shape (a second package copy). */
  readonly limit = 'pixels' as const;
  constructor(
    file: string,
    readonly width: number,
    readonly height: number,
    readonly maxPixels: number,
  ) {
    super(file, `resolution ${width}x${height} exceeds the limit of ${maxPixels} pixels`);
  }
}
