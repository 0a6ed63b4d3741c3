/**
 * A chat completion about a live stream (issue #22 item 4): the conversation's `video_url` is `stream://ID`, and
 * the question runs on a snapshot of that stream's window when the generation slot is free (it waits for the
 * first frame, within the request's time limit). The answer has the shape of any chat completion, JSON or
 * server-sent events; its `bvllm.selection` cites the frames' stream times and `bvllm.stream` the window it saw.
 */
import { randomUUID } from 'node:crypto';
import { BvllmError } from '@bvllm/core';
import type { LiveAskResult } from '@bvllm/pipeline';
import type { FastifyReply } from 'fastify';
import { ApiError, invalidRequest, toApiError } from './api-error.js';
import { toConversation, type ChatRequest } from './chat-request.js';
import type { ChatDeps } from './chat-completion.js';
import type { StreamRegistry } from './streams.js';
import { rejectUnsupported } from './unsupported-params.js';

export const STREAM_SCHEME = 'stream://';

/** Whether the request's medium is a live stream (`stream://ID`). */
export function asksAboutStream(body: ChatRequest): boolean {
  return body.messages.some((m) => typeof m.content !== 'string' && m.content.some((p) => p.type === 'video_url' && p.video_url.url.startsWith(STREAM_SCHEME)));
}

const finishReason = (reason: string) => (reason === 'length' || reason === 'context' ? 'length' : 'stop');

/** Server-sent events on the raw response, opened at the first chunk (as `chat-completion.ts` does). */
function eventStream(reply: FastifyReply) {
  let opened = false;
  return {
    get started() {
      return opened;
    },
    send(payload: unknown) {
      if (!opened) {
        reply.hijack();
        reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
        opened = true;
      }
      if (!reply.raw.destroyed) reply.raw.write(`data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`);
    },
    end() {
      if (!reply.raw.destroyed) reply.raw.end();
    },
  };
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
  const name = session.config.name;
  if (body.model !== name) throw new ApiError(404, 'not_found_error', `The model "${body.model}" does not exist; this server serves "${name}".`, 'model_not_found', 'model');
  rejectUnsupported(body as unknown as Record<string, unknown>);
  for (const field of ['media_io_kwargs', 'max_frames'] as const)
    if (body[field] !== undefined) throw invalidRequest(`${field}: a stream's sampling is set when it is opened (POST /v1/streams).`, 'invalid_value', field);
  const { turns, media } = toConversation(body, config.maxPromptChars);
  const entry = streams.get(media.url.slice(STREAM_SCHEME.length), media.param);
  const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  const generation = {
    maxNewTokens: body.max_completion_tokens ?? body.max_tokens ?? config.maxTokens,
    stopStrings: stop,
    ...(body.temperature != null && (body.temperature === 0 ? { doSample: false } : { doSample: true, temperature: body.temperature })),
    ...(body.top_p != null && { topP: body.top_p }),
  };
  const base = { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: name, system_fingerprint: null };
  const events = body.stream ? eventStream(reply) : undefined;
  try {
    const outcome = await deps.queue.run(async () => {
      const answer = entry.stream.ask(turns, { seed: body.seed ?? 0, generation, signal });
      let text = '';
      for (let first = true; ; first = false) {
        const next = await answer.next();
        if (first) {
          metrics.timeToFirstToken.observe((performance.now() - receivedAt) / 1000);
          events?.send({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] });
        }
        if (next.done) return { text, result: next.value };
        text += next.value;
        events?.send({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: next.value }, logprobs: null, finish_reason: null }] });
      }
    }, signal);
    metrics.generation.observe((performance.now() - receivedAt) / 1000);
    const completionTokens = Math.min(session.assets.tokenizer.encode(outcome.text).length, generation.maxNewTokens);
    const usage = { prompt_tokens: outcome.result.selection.promptTokens, completion_tokens: completionTokens, total_tokens: outcome.result.selection.promptTokens + completionTokens };
    const finish = finishReason(outcome.result.finishReason);
    metrics.completions.add(1, { finish_reason: finish });
    const bvllm = selectionPayload(outcome.result, entry.id);
    if (!events) {
      await reply.send({ ...base, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: outcome.text, refusal: null }, logprobs: null, finish_reason: finish }], usage, bvllm });
      return;
    }
    events.send({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finish }], bvllm });
    if (body.stream_options?.include_usage) events.send({ ...base, object: 'chat.completion.chunk', choices: [], usage });
    events.send('[DONE]');
    events.end();
  } catch (error) {
    if (BvllmError.isInstance(error) && error.code === 'ABORTED') metrics.aborted.add(1);
    const shown = signal.aborted && signal.reason instanceof ApiError ? signal.reason : error;
    if (!events?.started) throw shown;
    events.send(toApiError(shown).body());
    events.end();
  }
}
