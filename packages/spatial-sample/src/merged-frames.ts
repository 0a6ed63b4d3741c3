import { ConfigError, InvalidArgumentError, assertShape, type MergedFrames } from '@bvllm/core';

/** Checks the temporal merge's output at the stage boundary; returns K' and N. */
export function checkMergedFrames(merged: MergedFrames, visionWidth: number): { numFrames: number; numPatches: number } {
  assertShape('merged.merged', merged.merged, ["K'", 'N', visionWidth]);
  const [numFrames, numPatches] = merged.merged.shape;
  if (numFrames === 0) throw new InvalidArgumentError('merged', "no frames: K' = 0");
  if (numPatches === 0) throw new InvalidArgumentError('merged', 'no patches: N = 0');
  return { numFrames, numPatches };
}

/** Reads Cv from the neighbouring stages' dims (the vision encoder fixes it). */
export function visionWidthOf(dims: Readonly<Record<string, number>>): number {
  const cv = dims.Cv;
  if (!Number.isInteger(cv) || cv <= 0) throw new ConfigError(`spatial-sample: dims.Cv (vision width) must be a positive integer, got ${String(cv)}`, ['dims', 'Cv']);
  return cv;
}
