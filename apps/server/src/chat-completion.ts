/**
 * One chat completion: validate the conversation, open the medium, wait for the generation slot, encode the
 * video on the session's ONNX tower (or take it from the feature cache), stream the answer, and answer in OpenAI's shape, as one JSON body
 * or as server-sent events. Headers are sent only once the first token exists, so every failure before it
 * (bad medium, prompt too long, queue full, timeout) still gets its proper HTTP status.
 */
import { randomUUID } from 'node:crypto';
import { BvllmError } from '@bvllm/core';
import type { EncodedVideo, InferenceSession, SelectionSummary } from '@bvllm/pipeline';
import { probeVideo, sampleFrameIndices, samplingOptionsSchema } from '@bvllm/vision-encoder';
import type { FastifyReply } from 'fastify';
import { ApiError, invalidRequest, toApiError } from './api-error.js';
import { toConversation, type ChatRequest } from './chat-request.js';
import type { GenerationQueue } from './generation-queue.js';
import type { MediaSource } from './media-source.js';
import type { Metrics } from './metrics.js';
import type { ServerConfig } from './server-config.js';
import { thumbnail } from './thumbnails.js';

export interface ChatDeps {
  /** Every request answers through this one session (its ONNX tower encodes the media). */
  session: InferenceSession;
  config: ServerConfig;
  queue: GenerationQueue;
  /** Feature cache folder: a follow-up about the same medium never re-encodes it. */
  featureCacheDir: string;
  media: MediaSource;
  metrics: Metrics;
}

/** The selection in the response's `bvllm` field (an extension; OpenAI clients ignore it). */
export interface SelectionPayload {
  frames: { frame_index: number; timestamp_sec: number; weight: number; merged_queries: number[]; thumbnail?: string | null }[];
  /** Each query's weights over the T frames. [K][T] */
  frame_weights: number[][];
  /** Timestamps of all T sampled frames, for drawing the timeline. */
  frame_timestamps_sec: number[];
  visual_tokens: number;
  feature_cache: 'hit' | 'miss';
}

const IMAGE = /\.(png|jpe?g|webp|bmp)$/i;

/** OpenAI has no 'eos' or 'context': both end the turn, and running out of context is a length stop. */
const finishReason = (reason: string) => (reason === 'length' || reason === 'context' ? 'length' : 'stop');

/** The encoded medium from the cache, or decoded and encoded (on the session's tower) after the limits pass. */
async function encode(deps: ChatDeps, path: string, param: string, signal: AbortSignal): Promise<EncodedVideo> {
  const { session, config } = deps;
  const sampling = samplingOptionsSchema.parse(session.config.vision.sampling ?? {});
  if (!IMAGE.test(path)) {
    const info = await probeVideo(path, { signal });
    if (info.durationSec > config.maxDurationSec)
      throw invalidRequest(`${param}: the video lasts ${info.durationSec.toFixed(1)} s, over the limit of ${config.maxDurationSec} s.`, 'media_too_long', param);
    const frames = sampleFrameIndices(info.numFrames, info.fps, sampling).length;
    if (frames > config.maxFrames) throw invalidRequest(`${param}: the video gives ${frames} sampled frames, over the limit of ${config.maxFrames}.`, 'too_many_frames', param);
  }
  const video = await session.encode(path, { featureCacheDir: deps.featureCacheDir, signal });
  deps.metrics.featureCache.add(1, { result: video.cacheHit ? 'hit' : 'miss' });
  return video;
}

/** Server-sent events on the raw response; opened lazily at the first chunk. */
class EventStream {
  private opened = false;
  constructor(private readonly reply: FastifyReply) {}

  get started(): boolean {
    return this.opened;
  }

  send(payload: unknown): void {
    if (!this.opened) {
      this.reply.hijack();
      this.reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      this.opened = true;
    }
    if (!this.reply.raw.destroyed) this.reply.raw.write(`data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`);
  }

  end(): void {
    if (!this.reply.raw.destroyed) this.reply.raw.end();
  }
}

/** Handles the request; throws ApiError (or anything) before the first byte, handles errors itself after it. */
export async function chatCompletion(deps: ChatDeps, body: ChatRequest, reply: FastifyReply, signal: AbortSignal, receivedAt: number): Promise<void> {
  const { session, config, metrics } = deps;
  const name = session.config.name;
  if (body.model !== name) throw new ApiError(404, 'not_found_error', `The model "${body.model}" does not exist; this server serves "${name}".`, 'model_not_found', 'model');
  const { turns, media } = toConversation(body, config.maxPromptChars);
  const stop = body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  const generation = {
    maxNewTokens: body.max_completion_tokens ?? body.max_tokens ?? config.maxTokens,
    stopStrings: stop,
    // OpenAI's temperature 0 is greedy decoding; any other value samples. Absent, the model's default applies
    // (greedy, as the reference evaluates, spec §3).
    ...(body.temperature != null && (body.temperature === 0 ? { doSample: false } : { doSample: true, temperature: body.temperature })),
    ...(body.top_p != null && { topP: body.top_p }),
  };
  const base = { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: name, system_fingerprint: null };
  const events = body.stream ? new EventStream(reply) : undefined;
  const file = await deps.media.open(media.url, media.param, signal);
  try {
    const outcome = await deps.queue.run(async () => {
      const video = await encode(deps, file.path, media.param, signal);
      try {
        const answer = session.stream(video, turns, { seed: body.seed ?? 0, generation, signal });
        let text = '';
        for (let first = true; ; first = false) {
          const next = await answer.next();
          if (first) {
            metrics.timeToFirstToken.observe((performance.now() - receivedAt) / 1000);
            events?.send({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] });
          }
          if (next.done) return { text, ...next.value, hit: video.cacheHit, timestampsSec: [...video.timestampsSec] };
          text += next.value;
          events?.send({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: next.value }, logprobs: null, finish_reason: null }] });
        }
      } finally {
        video.close();
      }
    }, signal);
    metrics.generation.observe((performance.now() - receivedAt) / 1000);
    // The pipeline streams text, not ids, so the answer is re-tokenized; a broken UTF-8 sequence re-encodes to
    // more ids than were generated, hence the cap.
    const completionTokens = Math.min(session.assets.tokenizer.encode(outcome.text).length, generation.maxNewTokens);
    const usage = { prompt_tokens: outcome.selection.promptTokens, completion_tokens: completionTokens, total_tokens: 0 };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    metrics.completions.add(1, { finish_reason: finishReason(outcome.finishReason) });
    metrics.promptTokens.add(usage.prompt_tokens);
    metrics.completionTokens.add(usage.completion_tokens);
    const selection = await selectionPayload(outcome.selection, outcome.timestampsSec, outcome.hit, body.bvllm?.thumbnails ? { path: file.path, width: config.thumbnailWidth, signal } : undefined);
    const finish = finishReason(outcome.finishReason);
    if (!events) {
      await reply.send({
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: outcome.text, refusal: null }, logprobs: null, finish_reason: finish }],
        usage,
        bvllm: { selection },
      });
      return;
    }
    events.send({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finish }], bvllm: { selection } });
    if (body.stream_options?.include_usage) events.send({ ...base, object: 'chat.completion.chunk', choices: [], usage });
    events.send('[DONE]');
    events.end();
  } catch (error) {
    if (BvllmError.isInstance(error) && error.code === 'ABORTED') metrics.aborted.add(1);
    // Aborted by the server (timeout, shutdown): the signal's reason says what the client should see.
    const shown = signal.aborted && signal.reason instanceof ApiError ? signal.reason : error;
    if (!events?.started) throw shown;
    // Mid-stream the status is already 200: OpenAI's clients raise an APIError for an `error` event.
    events.send(toApiError(shown).body());
    events.end();
  } finally {
    await file.release();
  }
}

async function selectionPayload(
  selection: SelectionSummary,
  timestampsSec: number[],
  hit: boolean,
  thumbnails?: { path: string; width: number; signal: AbortSignal },
): Promise<SelectionPayload> {
  const pictures = thumbnails ? await Promise.all(selection.frames.map((f) => thumbnail(thumbnails.path, f.timestampSec, thumbnails.width, thumbnails.signal))) : [];
  return {
    frames: selection.frames.map((f, i) => ({
      frame_index: f.frameIndex,
      timestamp_sec: f.timestampSec,
      weight: f.weight,
      merged_queries: f.mergedQueries,
      ...(thumbnails && { thumbnail: pictures[i] }),
    })),
    frame_weights: selection.frameWeights,
    frame_timestamps_sec: timestampsSec,
    visual_tokens: selection.visualTokens,
    feature_cache: hit ? 'hit' : 'miss',
  };
}
