/** Precomputing a folder of videos into a {@link FeatureCache}, as the reference's offline `extract.py` (spec §3). */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '@bvllm/core';
import type { FeatureCache } from './feature-cache.js';
import type { EncodeVideoOptions, FrameEncoder } from './vision-encoder.js';

const VIDEO_EXTENSIONS = /\.(mp4|mkv|webm|avi|mov|m4v|gif|mpg|mpeg|flv|wmv)$/i;

/** The videos directly in `dir` (by extension, not recursive), sorted by name: what `extractFeatures` encodes. */
export function listVideos(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => VIDEO_EXTENSIONS.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/**
 * Precomputes the features of every video in `dir` (not recursive) into `cache`, as the reference's offline
 * `extract.py` does (spec §3). Returns one record per video; features are not kept in memory.
 */
export async function extractFeatures(
  dir: string,
  encoder: FrameEncoder,
  cache: FeatureCache,
  options: EncodeVideoOptions & { onVideo?: (path: string, index: number, total: number, hit: boolean) => void } = {},
): Promise<{ path: string; key: string; hit: boolean; numFrames: number }[]> {
  const videos = listVideos(dir);
  const results: { path: string; key: string; hit: boolean; numFrames: number }[] = [];
  for (const [i, path] of videos.entries()) {
    const { features, key, hit } = await cache.getOrCompute(path, encoder, options);
    results.push({ path, key, hit, numFrames: features.timestampsSec.length });
    tf.dispose([features.cls, features.patches]);
    options.onVideo?.(path, i, videos.length, hit);
  }
  return results;
}
