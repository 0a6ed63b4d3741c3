/**
 * One chat completion: validate the conversation, open the medium, wait for the generation slot, encode the
 * video on the session's ONNX tower (or take it from the feature cache), stream the answer, and answer in OpenAI's shape, as one JSON body
 * or as server-sent events. Headers are sent only once the first token exists, so every failure before it
 * (bad medium, prompt too long, queue full, timeout) still gets its proper HTTP status.
 */
import type { EncodedVideo, InferenceSession, SelectionSummary } from '@bvllm/pipeline';
import { contentHash, probeImage, probeVideo, type SamplingOptions } from '@bvllm/vision-encoder';
import type { FastifyReply } from 'fastify';
import { invalidRequest } from './api-error.js';
import { toConversation, type ChatRequest } from './chat-request.js';
import { CompletionResponse, checkModelName, generationOf } from './completion-response.js';
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

/** Handles the request; throws ApiError (or anything) before the first byte, handles errors itself after it. */
export async function chatCompletion(deps: ChatDeps, body: ChatRequest, reply: FastifyReply, signal: AbortSignal, receivedAt: number): Promise<void> {
  const { session, config, metrics } = deps;
  checkModelName(body, session.config.name);
  rejectUnsupported(body as unknown as Record<string, unknown>);
  checkControls(body, deps.maxFrames);
  const { turns, media } = toConversation(body, config.maxPromptChars);
  const generation = generationOf(body, config);
  const response = new CompletionResponse(reply, body, session, metrics, receivedAt);
  const file = await deps.media.open(media.url, media.param, signal, media.bytes);
  try {
    const admitted = await admitMedium(deps, file.path, media.param, body, signal);
    const outcome = await deps.queue.run(async () => {
      const video = await encode(deps, file.path, admitted.sampling, signal);
      try {
        const { text, result } = await response.relay(session.stream(video, turns, { seed: body.seed ?? 0, generation, tokenBudget: admitted.tokenBudget, signal }));
        return { text, ...result, hit: video.cacheHit, timestampsSec: [...video.timestampsSec] };
      } finally {
        video.close();
      }
    }, signal);
    const selection = await selectionPayload(outcome.selection, outcome.timestampsSec, outcome.hit, admitted.evidence, body.bvllm?.thumbnails ? { path: file.path, width: config.thumbnailWidth, signal } : undefined);
    // Deleted before the last byte goes out, so a client that has its answer never sees the upload still on disk.
    await file.release();
    await response.finish({ text: outcome.text, finishReason: outcome.finishReason, promptTokens: outcome.selection.promptTokens, maxNewTokens: generation.maxNewTokens }, { selection });
  } catch (error) {
    response.fail(error, signal);
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
