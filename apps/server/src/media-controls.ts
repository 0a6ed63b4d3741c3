/**
 * Per-request frame controls (issue #20 item 6), in vLLM's convention: `media_io_kwargs: {"video": {"fps",
 * "num_frames"}}`, plus `max_frames` (Qwen-VL's clamp: a sampling that gives more frames is replaced by
 * `max_frames` uniformly spaced ones) and `max_visual_tokens` (the most visual tokens the answer may be given).
 * Resolved against the probed video into the sampling the session encodes with, and echoed in the response.
 */
import type { PipelineConfig } from '@bvllm/pipeline';
import { sampleFrameIndices, samplingOptionsSchema, type SamplingOptions } from '@bvllm/vision-encoder';
import { invalidRequest } from './api-error.js';

/** The request's fields (schema-checked: positive numbers, no unknown keys). */
export interface MediaControls {
  media_io_kwargs?: { video?: { fps?: number; num_frames?: number } };
  max_frames?: number;
  max_visual_tokens?: number;
}

/** The `sampling` evidence in `bvllm.selection`. */
export interface SamplingEvidence {
  mode: 'fps' | 'uniform';
  /** Frames per second sampled (`fps` mode). */
  fps: number | null;
  /** Frames asked for (`uniform` mode). */
  num_frames: number | null;
  /** The request's `max_frames`, if any. */
  max_frames: number | null;
  /** The request's `max_visual_tokens`, if any. */
  max_visual_tokens: number | null;
  /** T, the frames sampled. */
  frames: number;
}

/** Ajv schema of the three fields (merged into the request schema). */
export const mediaControlsSchema = {
  media_io_kwargs: {
    type: 'object',
    additionalProperties: false,
    properties: {
      video: {
        type: 'object',
        additionalProperties: false,
        properties: { fps: { type: 'number', exclusiveMinimum: 0, maximum: 1000 }, num_frames: { type: 'integer', minimum: 1 } },
      },
    },
  },
  max_frames: { type: 'integer', minimum: 1 },
  max_visual_tokens: { type: 'integer', minimum: 1 },
} as const;

/** Checks that need the server's limits (run before the medium is opened). */
export function checkControls(controls: MediaControls, maxFrames: number): void {
  const video = controls.media_io_kwargs?.video;
  if (video?.fps !== undefined && video.num_frames !== undefined)
    throw invalidRequest('media_io_kwargs.video: give fps or num_frames, not both.', 'invalid_value', 'media_io_kwargs.video');
  if (video?.num_frames !== undefined && video.num_frames > maxFrames)
    throw invalidRequest(`media_io_kwargs.video.num_frames: ${video.num_frames} is over this server's limit of ${maxFrames} frames.`, 'too_many_frames', 'media_io_kwargs.video.num_frames');
  if (controls.max_frames !== undefined && controls.max_frames > maxFrames)
    throw invalidRequest(`max_frames: ${controls.max_frames} is over this server's limit of ${maxFrames} frames.`, 'too_many_frames', 'max_frames');
}

/**
 * The sampling for a video of `numFrames` at `fps`: the model's (1 fps, spec §3) under the request's fps or
 * num_frames, then clamped to max_frames. Throws 400 `too_many_frames` past the server's `maxFrames`.
 */
export function resolveSampling(
  model: Partial<SamplingOptions> | undefined,
  controls: MediaControls,
  video: { numFrames: number; fps: number },
  limits: { maxFrames: number; param: string },
): { sampling: SamplingOptions; evidence: SamplingEvidence } {
  const asked = controls.media_io_kwargs?.video;
  let sampling = samplingOptionsSchema.parse({
    ...model,
    ...(asked?.fps !== undefined && { mode: 'fps', samplesPerSec: asked.fps }),
    ...(asked?.num_frames !== undefined && { mode: 'uniform', numFrames: asked.num_frames }),
  });
  let frames = sampleFrameIndices(video.numFrames, video.fps, sampling).length;
  if (controls.max_frames !== undefined && frames > controls.max_frames) {
    sampling = { ...sampling, mode: 'uniform', numFrames: controls.max_frames };
    frames = sampleFrameIndices(video.numFrames, video.fps, sampling).length;
  }
  if (frames > limits.maxFrames)
    throw invalidRequest(`${limits.param}: the video gives ${frames} sampled frames, over the limit of ${limits.maxFrames}; ask for fewer with max_frames.`, 'too_many_frames', limits.param);
  return { sampling, evidence: evidenceOf(sampling, controls, frames) };
}

export function evidenceOf(sampling: SamplingOptions, controls: MediaControls, frames: number): SamplingEvidence {
  return {
    mode: sampling.mode,
    fps: sampling.mode === 'fps' ? sampling.samplesPerSec : null,
    num_frames: sampling.mode === 'uniform' ? sampling.numFrames : null,
    max_frames: controls.max_frames ?? null,
    max_visual_tokens: controls.max_visual_tokens ?? null,
    frames,
  };
}

/**
 * The most visual tokens this model can give one question, from its config: K selection queries (or the uniform
 * selector's frames; every frame for `all`), each kept frame R spatial queries, cut by the token budget θ
 * (`budgetTokensPerFrame` of @bvllm/spatial-sample: N' = int(max(1, ⌊θ/R⌋ / K' · R))). Undefined for samplers
 * without a fixed count per frame.
 */
export function maxVisualTokens(config: PipelineConfig, frames: number): number | undefined {
  const select = config.frameSelect as { kind: string; numQueries?: number; numFrames?: number };
  const sample = config.spatialSample as { kind: string; numQueries?: number; tokenBudget?: number | null };
  if (sample.kind !== 'qformer') return undefined;
  const k = select.kind === 'qformer-gumbel' ? (select.numQueries ?? 32) : select.kind === 'uniform' ? (select.numFrames ?? 32) : frames;
  const r = sample.numQueries ?? 32;
  const budget = sample.tokenBudget === undefined ? 576 : sample.tokenBudget;
  let most = 0;
  // K' (frames left after the temporal merge) is between 1 and K; the budget makes N' depend on it.
  for (let kept = 1; kept <= k; kept++) {
    const perFrame = budget === null ? r : Math.min(r, Math.trunc(Math.max(1, (Math.floor(budget / r) / kept) * r)));
    most = Math.max(most, kept * perFrame);
  }
  return most;
}

/**
 * Refuses a `max_visual_tokens` below what the model may give: the budget θ is part of the exported spatial
 * module, so a request cannot lower it; it can only require that the answer sees at most that many.
 */
export function checkVisualTokens(config: PipelineConfig, controls: MediaControls, frames: number): void {
  const asked = controls.max_visual_tokens;
  if (asked === undefined) return;
  const most = maxVisualTokens(config, frames);
  if (most !== undefined && most > asked)
    throw invalidRequest(
      `max_visual_tokens: this model gives up to ${most} visual tokens per question (its token budget); a lower per-request budget is not supported.`,
      'visual_tokens_over_limit',
      'max_visual_tokens',
    );
}
