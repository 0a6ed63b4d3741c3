/**
 * How many visual tokens a model can give one question (issue #20 item 6, a request's `max_visual_tokens`): K
 * selection queries (the uniform selector's frames; every frame for `all`), of which the temporal merge keeps K' ∈
 * [1, K], each with N' = int(max(1, ⌊θ/R⌋ / K' · R)) spatial tokens under the budget θ (spec §1.1 (d), D12).
 */
import { tokensPerFrameUnder } from '@bvllm/spatial-sample';
import type { PipelineConfig } from './pipeline-config.js';

/**
 * The most visual tokens any question can get on a video of `frames` sampled frames, under θ = `tokenBudget`
 * (default the config's). Undefined for samplers without a fixed count per frame (the pool baselines).
 */
export function maxVisualTokens(config: PipelineConfig, frames: number, tokenBudget?: number | null): number | undefined {
  const select = config.frameSelect as { kind: string; numQueries?: number; numFrames?: number };
  const sample = config.spatialSample as { kind: string; numQueries?: number; tokenBudget?: number | null };
  if (sample.kind !== 'qformer') return undefined;
  const k = select.kind === 'qformer-gumbel' ? (select.numQueries ?? 32) : select.kind === 'uniform' ? (select.numFrames ?? 32) : frames;
  const r = sample.numQueries ?? 32;
  const budget = tokenBudget !== undefined ? tokenBudget : sample.tokenBudget === undefined ? 576 : sample.tokenBudget;
  let most = 0;
  // N' depends on K' through the budget, so the most is over every K' the merge can leave.
  for (let kept = 1; kept <= k; kept++) most = Math.max(most, kept * tokensPerFrameUnder(budget, r, kept));
  return most;
}
