import type { FrameFeatures } from '@bvllm/core';
import { EncodedVideo } from './inference/encoded-video.js';
import type { AskOptions, AskResult, ChatTurn, EncodeVideoOptions, InferenceSession } from './inference-session.js';

/**
 * A multi-round conversation about one video. The video is encoded once; each follow-up question reruns only
 * selection, merging, sampling and the LLM (the cost the paper lists as a limitation, spec §6). The session stays
 * the caller's (one session serves many chats).
 */
export class VideoChat {
  readonly turns: ChatTurn[] = [];

  private constructor(
    readonly session: InferenceSession,
    readonly video: EncodedVideo,
  ) {}

  static async open(session: InferenceSession, videoPath: string, options: EncodeVideoOptions = {}): Promise<VideoChat> {
    return new VideoChat(session, await session.encode(videoPath, options));
  }

  /** Wraps an encoded video (it becomes the chat's; `dispose` closes it). */
  static fromVideo(session: InferenceSession, video: EncodedVideo): VideoChat {
    return new VideoChat(session, video);
  }

  /** Wraps tfjs features the caller already has (copied; the tensors stay the caller's). */
  static async fromFeatures(session: InferenceSession, features: FrameFeatures): Promise<VideoChat> {
    return new VideoChat(session, await EncodedVideo.fromFeatures(features, session.selectionFeature()));
  }

  /** Streams the answer to `question`; the turn and the answer join the history when the stream completes. */
  async *ask(question: string, options: AskOptions = {}): AsyncGenerator<string, AskResult> {
    const turns: ChatTurn[] = [...this.turns, { role: 'user', content: question }];
    let text = '';
    const stream = this.session.stream(this.video, turns, options);
    for (;;) {
      const next = await stream.next();
      if (next.done) {
        this.turns.push({ role: 'user', content: question }, { role: 'assistant', content: text });
        return next.value;
      }
      text += next.value;
      yield next.value;
    }
  }

  dispose(): void {
    this.video.close();
  }
}
