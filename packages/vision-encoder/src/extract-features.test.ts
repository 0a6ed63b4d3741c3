import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { Rng, initBackend, tf } from '@bvllm/core';
import { extractFeatures } from './extract-features.js';
import { FeatureCache } from './feature-cache.js';
import { colourVideo, tempDir } from './test-videos.js';
import { VisionEncoder } from './vision-encoder.js';

const tiny = { hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, imageSize: 16, patchSize: 8 };
let videos: string;

beforeAll(async () => {
  await initBackend();
  videos = tempDir();
  colourVideo(join(videos, 'a.mp4'), ['red', 'blue']);
  colourVideo(join(videos, 'b.mp4'), ['lime', 'yellow', 'white']);
  writeFileSync(join(videos, 'notes.txt'), 'not a video');
});

describe('extractFeatures', () => {
  it('extractFeatures precomputes every video of a folder once', async () => {
    const encoder = VisionEncoder.create(tiny, Rng.fromSeed(7));
    const calls = vi.spyOn(encoder, 'encode');
    const dir = join(tempDir(), 'cache');
    mkdirSync(dir);
    const cache = new FeatureCache(dir, { floatDtype: 'F16' });
    const first = await extractFeatures(videos, encoder, cache);
    expect(first.map((r) => [r.path.endsWith('a.mp4') || r.path.endsWith('b.mp4'), r.hit, r.numFrames])).toEqual([
      [true, false, 2],
      [true, false, 3],
    ]);
    expect(calls).toHaveBeenCalledTimes(2);
    const second = await extractFeatures(videos, encoder, cache);
    expect(second.every((r) => r.hit)).toBe(true);
    expect(calls).toHaveBeenCalledTimes(2);
    expect(readdirSync(dir).sort()).toHaveLength(4);
    const before = tf.memory().numTensors;
    await extractFeatures(videos, encoder, cache);
    expect(tf.memory().numTensors).toBe(before);
    encoder.dispose();
  });
});
