/**
 * A chat completion about a live stream (issue #22 item 4): the conversation's `video_url` is `stream://ID`, and
 * the question runs on a snapshot of that stream's window when the generation slot is free (it waits for the
 * first frame, within the request's time limit). The answer has the shape of any chat completion, JSON or
 * server-sent events; its `bvllm.selection` cites the frames' stream times and `bvllm.stream` the window it saw.
 */
import type { LiveAskResult } from '@bvllm/pipeline';
import type { FastifyReply } from 'fastify';
import { invalidRequest } from './api-error.js';
import { toConversation, type ChatRequest } from './chat-request.js';
import type { ChatDeps } from './chat-completion.js';
import { CompletionResponse, checkModelName, generationOf } from './completion-response.js';
import type { StreamRegistry } from './streams.js';
import { rejectUnsupported } from './unsupported-params.js';

export const STREAM_SCHEME = 'stream://';

/** Whether the request's medium is a live stream (`stream://ID`). */
export function asksAboutStream(body: ChatRequest): boolean {
  return body.messages.some((m) => typeof m.content !== 'string' && m.content.some((p) => p.type === 'video_url' && p.video_url.url.startsWith(STREAM_SCHEME)));
}

function selectionPayload(result: LiveAskResult, id: string) {
  return {
    selection: {
      frames: result.selection.frames.map((f) => ({ frame_index: f.frameIndex, timestamp_sec: f.timestampSec, weight: f.weight, merged_queries: f.mergedQueries })),
      frame_weights: result.selection.frameWeights,
      /** Stream time of each of the window's T frames (what `frame_index` indexes), for drawing the timeline. */
      frame_timestamps_sec: result.window.timestampsSec,
      visual_tokens: result.selection.visualTokens,
    },
    stream: { id, window: { frames: result.window.frames, from_sec: result.window.fromSec, to_sec: result.window.toSec }, cited_sec: result.citedSec },
  };
}

/** Handles a chat request about a stream; throws ApiError (or anything) before the first byte, handles errors itself after it. */
export async function streamChatCompletion(deps: ChatDeps, streams: StreamRegistry, body: ChatRequest, reply: FastifyReply, signal: AbortSignal, receivedAt: number): Promise<void> {
  const { session, config, metrics } = deps;
  checkModelName(body, session.config.name);
  rejectUnsupported(body as unknown as Record<string, unknown>);
  for (const field of ['media_io_kwargs', 'max_frames'] as const)
    if (body[field] !== undefined) throw invalidRequest(`${field}: a stream's sampling is set when it is opened (POST /v1/streams).`, 'invalid_value', field);
  const { turns, media } = toConversation(body, config.maxPromptChars);
  const entry = streams.get(media.url.slice(STREAM_SCHEME.length), media.param);
  const generation = generationOf(body, config);
  const response = new CompletionResponse(reply, body, session, metrics, receivedAt);
  try {
    const { text, result } = await deps.queue.run(() => response.relay(entry.stream.ask(turns, { seed: body.seed ?? 0, generation, signal })), signal);
    await response.finish({ text, finishReason: result.finishReason, promptTokens: result.selection.promptTokens, maxNewTokens: generation.maxNewTokens }, selectionPayload(result, entry.id));
  } catch (error) {
    response.fail(error, signal);
  }
}
