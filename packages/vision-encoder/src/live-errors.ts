import { BvllmError, stderrExcerpt } from '@bvllm/core';

/**
 * A live source never delivered a frame: ffmpeg could not open it, or it opened and stayed silent past the open
 * timeout, on every attempt. `source` is the URL as given (a server shows `reason` alone).
 */
export class StreamOpenError extends BvllmError {
  constructor(
    readonly source: string,
    readonly reason: string,
    readonly attempts: number,
    readonly stderr = '',
  ) {
    super('STREAM_OPEN', `${source}: cannot open the live source after ${attempts} attempt(s): ${reason}${stderr ? `\nffmpeg said:\n${stderrExcerpt(stderr)}` : ''}`);
  }
}

/** The source opened but carries no video stream (audio only, data only). Not retried: reconnecting cannot fix it. */
export class StreamNoVideoError extends BvllmError {
  constructor(
    readonly source: string,
    readonly stderr = '',
  ) {
    super('STREAM_NO_VIDEO', `${source}: the live source has no video stream${stderr ? `\nffmpeg said:\n${stderrExcerpt(stderr)}` : ''}`);
  }

  get reason(): string {
    return 'the live source has no video stream';
  }
}

/**
 * No frame arrived for `silentMs` although the source was running: what a question waiting for frames gets, so it
 * fails instead of waiting forever. The source itself keeps reconnecting.
 */
export class StreamStalledError extends BvllmError {
  constructor(
    readonly source: string,
    readonly silentMs: number,
  ) {
    super('STREAM_STALLED', `${source}: the live source stalled: no frame for ${Math.round(silentMs)} ms`);
  }

  get reason(): string {
    return `the live source stalled: no frame for ${Math.round(this.silentMs)} ms`;
  }
}

/** The live source or stream was closed (by its owner, or because it ended) while something waited on it. */
export class StreamClosedError extends BvllmError {
  constructor(readonly source: string) {
    super('STREAM_CLOSED', `${source}: the live stream is closed`);
  }

  get reason(): string {
    return 'the live stream is closed';
  }
}
