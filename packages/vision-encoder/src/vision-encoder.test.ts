import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng, initBackend, tf } from '@bvllm/core';
import { decodeVideo } from './decode.js';
import { preprocessClip } from './preprocess.js';
import { colourVideo, tempDir } from './test-videos.js';
import { VisionEncoder } from './vision-encoder.js';

const fixtureDir = new URL('../../../../shared/fixtures/eva-vit/', import.meta.url).pathname;
const tiny = { hiddenSize: 16, intermediateSize: 32, numLayers: 2, numHeads: 2, imageSize: 16, patchSize: 8 };
let video: string;

beforeAll(async () => {
  await initBackend();
  video = colourVideo(join(tempDir(), 'v.mp4'), ['red', 'blue', 'lime'], { width: 40, height: 30 });
});

const close = (a: tf.Tensor, b: tf.Tensor, tol = 1e-5) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]) < tol;

describe('VisionEncoder', () => {
  it('encode() splits the last block into raw cls and patches, or the post-layernormed tokens (eva-vit fixture, spec §1.1)', () => {
    const expected = JSON.parse(readFileSync(`${fixtureDir}expected.json`, 'utf8'));
    const inputs = JSON.parse(readFileSync(`${fixtureDir}inputs.json`, 'utf8'));
    const encoder = VisionEncoder.load(fixtureDir);
    const pixels = tf.tidy(() => tf.transpose(tf.tensor4d(inputs.pixel_values), [0, 2, 3, 1]) as tf.Tensor4D);
    const raw = encoder.encode(pixels);
    const normed = encoder.encode(pixels, { output: 'postLayernorm' });
    expect(raw.cls.shape).toEqual([2, 32]);
    expect(raw.patches.shape).toEqual([2, 16, 32]);
    expect(close(raw.cls, tf.tensor(expected.cls_last_block_output), 1e-4)).toBe(true);
    expect(close(normed.cls, tf.tensor(expected.cls_post_layernorm), 1e-4)).toBe(true);
    const patchesWant = tf.slice(tf.tensor3d(expected.last_block_output), [0, 1, 0], [2, 16, 32]);
    expect(close(raw.patches, patchesWant, 1e-4)).toBe(true);
    tf.dispose([pixels, raw.cls, raw.patches, normed.cls, normed.patches, patchesWant]);
    encoder.dispose();
  });

  it('encodeVideo = decode at 1 fps → preprocess → encode, batch size does not change the numbers, progress counts frames', async () => {
    const encoder = VisionEncoder.create(tiny, Rng.fromSeed(1));
    const progress: number[] = [];
    const features = await encoder.encodeVideo(video, { batchSize: 2, onProgress: (done, total) => progress.push(done, total) });
    expect(features.cls.shape).toEqual([3, 16]);
    expect(features.patches.shape).toEqual([3, 4, 16]);
    expect(features.timestampsSec).toEqual([0.5, 1.5, 2.5]);
    expect(progress).toEqual([2, 3, 3, 3]);
    const decoded = await decodeVideo(video);
    const pixels = tf.tensor4d(Float32Array.from(decoded.frames.flatMap((f) => [...preprocessClip(f, 40, 30, { shortestEdge: 16, cropSize: 16 })])), [3, 16, 16, 3]);
    const direct = encoder.encode(pixels);
    expect(close(features.cls, direct.cls) && close(features.patches, direct.patches)).toBe(true);
    // Different colours give different features: the frames really are different seconds.
    expect(close(tf.slice(features.cls, [0, 0], [1, 16]), tf.slice(features.cls, [1, 0], [1, 16]), 1e-3)).toBe(false);
    tf.dispose([features.cls, features.patches, pixels, direct.cls, direct.patches]);
    encoder.dispose();
  });

  it('SigLIP has no class token: cls is the pooling head output, patches are all N tokens', () => {
    const encoder = VisionEncoder.create({ ...tiny, family: 'siglip', hiddenAct: 'gelu_pytorch_tanh' }, Rng.fromSeed(2));
    const pixels = tf.zeros([2, 16, 16, 3]) as tf.Tensor4D;
    const out = encoder.encode(pixels);
    expect(out.cls.shape).toEqual([2, 16]);
    expect(out.patches.shape).toEqual([2, 4, 16]);
    tf.dispose([pixels, out.cls, out.patches]);
    encoder.dispose();
  });

  it("split 'parity' follows the reference: odd token count → token 0, even → mean of all tokens (spec §1.1)", () => {
    const pixels = tf.tidy(() => Rng.fromSeed(3).normal([1, 24, 24, 3]) as tf.Tensor4D);
    // 3×3 grid + CLS = 10 tokens (even).
    const even = VisionEncoder.create({ ...tiny, imageSize: 24 }, Rng.fromSeed(4));
    const last = even.model.forward(pixels).lastBlock;
    const ref = even.encode(pixels, { split: 'parity' });
    const plain = even.encode(pixels);
    expect(ref.patches.shape).toEqual([1, 10, 16]);
    expect(plain.patches.shape).toEqual([1, 9, 16]);
    expect(close(ref.cls, tf.mean(last, 1))).toBe(true);
    expect(close(plain.cls, tf.reshape(tf.slice(last, [0, 0, 0], [1, 1, 16]), [1, 16]))).toBe(true);
    // 2×2 grid + CLS = 5 tokens (odd): both splits agree.
    const odd = VisionEncoder.create(tiny, Rng.fromSeed(5));
    const px16 = tf.slice(pixels, [0, 0, 0, 0], [1, 16, 16, 3]) as tf.Tensor4D;
    const a = odd.encode(px16, { split: 'parity' });
    const b = odd.encode(px16);
    expect(close(a.cls, b.cls) && close(a.patches, b.patches)).toBe(true);
    tf.dispose([pixels, px16, last, ref.cls, ref.patches, plain.cls, plain.patches, a.cls, a.patches, b.cls, b.patches]);
    even.dispose();
    odd.dispose();
  });

  it('encodeVideo and encode do not leak tensors', async () => {
    const encoder = VisionEncoder.create(tiny, Rng.fromSeed(1));
    const once = async () => {
      const f = await encoder.encodeVideo(video, { batchSize: 2 });
      tf.dispose([f.cls, f.patches]);
    };
    await once();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await once();
    expect(tf.memory().numTensors).toBe(before);
    encoder.dispose();
  });

  it('refuses a crop size that is not the encoder image size', () => {
    const encoder = VisionEncoder.create(tiny, Rng.fromSeed(1));
    expect(() => encoder.preprocessOptions({ cropSize: 24 })).toThrow(/cropSize must equal the encoder image size/);
    encoder.dispose();
  });
});
