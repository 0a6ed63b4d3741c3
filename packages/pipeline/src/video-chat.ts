import type { FrameFeatures } from '@bvllm/core';
import { streamAnswer, type AskOptions, type AskResult, type ChatTurn } from './answer.js';
import type { BvllmModel } from './bvllm-model.js';
import { disposeFeatures, videoFeatures, type VideoFeatureOptions } from './video-features.js';

/**
 * A multi-round conversation about one video. The frame features are computed once; each follow-up question
 * reruns only selection, merging, sampling and the LLM (the cost the paper lists as a limitation, spec §6).
 */
export class VideoChat {
  readonly turns: ChatTurn[] = [];

  private constructor(
    readonly model: BvllmModel,
    readonly features: FrameFeatures,
  ) {}

  static async open(model: BvllmModel, videoPath: string, options: VideoFeatureOptions = {}): Promise<VideoChat> {
    return new VideoChat(model, await videoFeatures(model, videoPath, options));
  }

  /** Wraps features the caller already has (they become the chat's; `dispose` frees them). */
  static fromFeatures(model: BvllmModel, features: FrameFeatures): VideoChat {
    return new VideoChat(model, features);
  }

  /** Streams the answer to `question`; the turn and the answer join the history when the stream completes. */
  async *ask(question: string, options: AskOptions = {}): AsyncGenerator<string, AskResult> {
    const turns: ChatTurn[] = [...this.turns, { role: 'user', content: question }];
    let text = '';
    const stream = streamAnswer(this.model, this.features, turns, options);
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
    disposeFeatures(this.features);
  }
}
