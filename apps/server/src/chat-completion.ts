/**
 * One chat completion: validate the conversation, open the medium, wait for the generation slot, encode the
 * video on the session's ONNX tower (or take it from the feature cache), stream the answer, and answer in OpenAI's shape, as one JSON body
 * or as server-sent events. Headers are sent only once the first token exists, so every failure before it
 * (bad medium, prompt too long, queue full, timeout) still gets its proper HTTP status.
 */
import { randomUUID } from 'node:crypto';
import { BvllmError } from '@bvllm/core';
import type { EncodedVideo, InferenceSession, SelectionSummary } from '@bvllm/pipeline';
import { contentHash, probeImage, probeVideo, type SamplingOptions } from '@bvllm/vision-encoder';
import type { FastifyReply } from 'fastify';
import { ApiError, invalidRequest, toApiError } from './api-error.js';
import { toConversation, type ChatRequest } from './chat-request.js';
import type { GenerationQueue } from './generation-queue.js';
import type { MediaSource } from './media-source.js';
import type { FeatureCacheLru } from './feature-cache-lru.js';
import { checkControls, evidenceOf, resolveSampling, visualTokenBudget, type MediaControls, type SamplingEvidence } from './media-controls.js';
import type { Metrics } from './metrics.js';
import { rejectUnsupported } from './unsupported-params.js';
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
  /** Keeps the feature cache folder within its byte budget. */
  featureCacheLru: FeatureCacheLru;
  /** The frame limit in force (`config.maxFrames`, or its default from the duration limit). */
  maxFrames: number;
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
  /** How the frames were sampled, with the request's frame and token controls. */
  sampling: SamplingEvidence;
}

const IMAGE = /\.(png|jpe?g|webp|bmp)$/i;

/** OpenAI has no 'eos' or 'context': both end the turn, and running out of context is a length stop. */
const finishReason = (reason: string) => (reason === 'length' || reason === 'context' ? 'length' : 'stop');

/**
 * Every limit that the header or a probe can decide, before any frame is decoded: pixels (images from their
 * header, videos from the container's declared size), duration, and the frames the request's sampling gives.
 */
async function admitMedium(deps: ChatDeps, path: string, param: string, controls: MediaControls, signal: AbortSignal): Promise<{ sampling?: SamplingOptions; evidence: SamplingEvidence; tokenBudget?: number }> {
  const { session, config } = deps;
  const model = session.config.vision.sampling as Partial<SamplingOptions> | undefined;
  if (IMAGE.test(path)) {
    probeImage(path, { maxPixels: config.maxPixels });
    const tokenBudget = visualTokenBudget(session.config, controls, 1);
    return { evidence: evidenceOf({ ...defaultSampling(model) }, controls, 1, tokenBudget), tokenBudget };
  }
  const info = await probeVideo(path, { signal, maxPixels: config.maxPixels });
  if (info.durationSec > config.maxDurationSec)
    throw invalidRequest(`${param}: the video lasts ${info.durationSec.toFixed(1)} s, over the limit of ${config.maxDurationSec} s.`, 'media_too_long', param);
  // GIFs are sampled at 25 fps whatever they declare (as the frame stream does).
  const fps = path.endsWith('.gif') ? 25 : info.fps;
  const resolved = resolveSampling(model, controls, { numFrames: info.numFrames, fps }, { maxFrames: deps.maxFrames, param });
  const tokenBudget = visualTokenBudget(session.config, controls, resolved.evidence.frames);
  return { ...resolved, evidence: { ...resolved.evidence, token_budget: tokenBudget ?? null }, tokenBudget };
}

const defaultSampling = (model: Partial<SamplingOptions> | undefined): SamplingOptions =>
  ({ mode: 'fps', samplesPerSec: 1, numFrames: 16, maxFrames: 10200, ...model }) as SamplingOptions;

/** The encoded medium from the cache, or decoded and encoded (on the session's tower); the cache is then kept within its budget. */
async function encode(deps: ChatDeps, path: string, sampling: SamplingOptions | undefined, signal: AbortSignal): Promise<EncodedVideo> {
  const video = await deps.session.encode(path, { featureCacheDir: deps.featureCacheDir, signal, ...(sampling && { sampling }) });
  deps.metrics.featureCache.add(1, { result: video.cacheHit ? 'hit' : 'miss' });
  try {
    deps.featureCacheLru.touchAndPrune(await contentHash(path));
  } catch (error) {
    video.close();
    throw error;
  }
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
  rejectUnsupported(body as unknown as Record<string, unknown>);
  checkControls(body, deps.maxFrames);
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
  const file = await deps.media.open(media.url, media.param, signal, media.bytes);
  try {
    const admitted = await admitMedium(deps, file.path, media.param, body, signal);
    const outcome = await deps.queue.run(async () => {
      const video = await encode(deps, file.path, admitted.sampling, signal);
      try {
        const answer = session.stream(video, turns, { seed: body.seed ?? 0, generation, tokenBudget: admitted.tokenBudget, signal });
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
    const selection = await selectionPayload(outcome.selection, outcome.timestampsSec, outcome.hit, admitted.evidence, body.bvllm?.thumbnails ? { path: file.path, width: config.thumbnailWidth, signal } : undefined);
    const finish = finishReason(outcome.finishReason);
    // Deleted before the last byte goes out, so a client that has its answer never sees the upload still on disk.
    await file.release();
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
  sampling: SamplingEvidence,
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
    sampling,
  };
}
