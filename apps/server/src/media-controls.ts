/**
 * Per-request frame controls (issue #20 item 6), in vLLM's convention: `media_io_kwargs: {"video": {"fps",
 * "num_frames"}}`, plus `max_frames` (Qwen-VL's clamp: a sampling that gives more frames is replaced by
 * `max_frames` uniformly spaced ones) and `max_visual_tokens` (the most visual tokens the answer may be given).
 * Resolved against the probed video into the sampling the session encodes with, and echoed in the response.
 */
import { maxVisualTokens, type PipelineConfig } from '@bvllm/pipeline';
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
  /** The token budget θ this answer used in place of the model's, when `max_visual_tokens` lowered it. */
  token_budget: number | null;
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

export function evidenceOf(sampling: SamplingOptions, controls: MediaControls, frames: number, tokenBudget?: number): SamplingEvidence {
  return {
    mode: sampling.mode,
    fps: sampling.mode === 'fps' ? sampling.samplesPerSec : null,
    num_frames: sampling.mode === 'uniform' ? sampling.numFrames : null,
    max_frames: controls.max_frames ?? null,
    max_visual_tokens: controls.max_visual_tokens ?? null,
    token_budget: tokenBudget ?? null,
    frames,
  };
}

/**
 * The token budget θ a request's `max_visual_tokens` asks for (issue #20 item 6): none when the model's own budget
 * already gives at most that many, else θ = `max_visual_tokens`, which lowers the tokens each kept frame keeps (the
 * budget merge runs after the spatial Q-Former, so any θ works). A θ below R still leaves one token per kept frame,
 * so a bound under the frames the selection can keep is refused with a 400 naming the least this model can give.
 */
export function visualTokenBudget(config: PipelineConfig, controls: MediaControls, frames: number): number | undefined {
  const asked = controls.max_visual_tokens;
  if (asked === undefined) return undefined;
  const most = maxVisualTokens(config, frames);
  if (most === undefined || most <= asked) return undefined;
  const least = maxVisualTokens(config, frames, asked)!;
  if (least > asked)
    throw invalidRequest(
      `max_visual_tokens: this model gives at least ${least} visual tokens to a question about ${frames} frame${frames === 1 ? '' : 's'} (one per frame it keeps); ask for ${least} or more.`,
      'visual_tokens_over_limit',
      'max_visual_tokens',
    );
  return asked;
}
