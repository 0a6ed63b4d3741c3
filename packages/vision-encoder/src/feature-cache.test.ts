import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { Rng, initBackend, tf } from '@bvllm/core';
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

const same = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]) === 0;

describe('FeatureCache', () => {
  it('a second request is served from disk without running the encoder; settings and weights change the key', async () => {
    const encoder = VisionEncoder.create(tiny, Rng.fromSeed(5));
    const calls = vi.spyOn(encoder, 'encode');
    const cache = new FeatureCache(tempDir());
    const video = join(videos, 'a.mp4');
    const first = await cache.getOrCompute(video, encoder);
    expect(first.hit).toBe(false);
    expect(calls).toHaveBeenCalledTimes(1);
    const second = await cache.getOrCompute(video, encoder);
    expect(second.hit).toBe(true);
    expect(calls).toHaveBeenCalledTimes(1);
    expect(second.key).toBe(first.key);
    expect(same(first.features.cls, second.features.cls) && same(first.features.patches, second.features.patches)).toBe(true);
    expect(second.features.timestampsSec).toEqual([0.5, 1.5]);

    const other = await cache.getOrCompute(video, encoder, { sampling: { mode: 'uniform', numFrames: 3 } });
    expect(other.hit).toBe(false);
    expect(calls).toHaveBeenCalledTimes(2);
    const variable = encoder.model.store.get('post_layernorm.bias');
    variable.assign(tf.onesLike(variable));
    const retrained = await cache.getOrCompute(video, encoder);
    expect(retrained.hit).toBe(false);
    expect(retrained.key).not.toBe(first.key);
    for (const r of [first, second, other, retrained]) tf.dispose([r.features.cls, r.features.patches]);
    encoder.dispose();
  });

  it('a corrupt, truncated or mismatched entry is detected and recomputed, never used', async () => {
    const encoder = VisionEncoder.create(tiny, Rng.fromSeed(6));
    const calls = vi.spyOn(encoder, 'encode');
    const dir = tempDir();
    const cache = new FeatureCache(dir);
    const video = join(videos, 'a.mp4');
    const first = await cache.getOrCompute(video, encoder);
    const tensors = join(dir, `${first.key}.safetensors`);
    const meta = join(dir, `${first.key}.json`);
    const bytes = readFileSync(tensors);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 3] ^= 0xff;
    const damage = [
      () => writeFileSync(tensors, flipped), // a flipped bit in a value
      () => writeFileSync(tensors, bytes.subarray(0, bytes.length - 10)), // truncated
      () => writeFileSync(meta, '{"format": "bvllm-frame-features/1", '), // broken JSON
      () => writeFileSync(meta, readFileSync(meta, 'utf8').replace('"lastBlock"', '"postLayernorm"')), // settings of another run
    ];
    let expectedCalls = 1;
    for (const corrupt of damage) {
      corrupt();
      const again = await cache.getOrCompute(video, encoder);
      expectedCalls++;
      expect(again.hit).toBe(false);
      expect(calls).toHaveBeenCalledTimes(expectedCalls);
      expect(same(again.features.cls, first.features.cls)).toBe(true);
      tf.dispose([again.features.cls, again.features.patches]);
    }
    const valid = await cache.getOrCompute(video, encoder);
    expect(valid.hit).toBe(true);
    tf.dispose([first.features.cls, first.features.patches, valid.features.cls, valid.features.patches]);
    encoder.dispose();
  });
});
