import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Rng, initBackend, tf } from '@bvllm/core';
import { checkModel } from '@bvllm/onnx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { colourVideo, tempDir } from '../test-videos.js';
import { VisionEncoder } from '../vision-encoder.js';
import type { VitConfigInput } from '../vit.js';
import { OrtVisionEncoder, VISION_ONNX_FILE, exportVisionEncoderCached } from './ort-vision-encoder.js';
import { exportVisionEncoderOnnx } from './vision-onnx.js';

// issue #10: the tower exported to ONNX gives the tfjs tower's numbers (spec §1.0: EVA's last block, no final norm).
const fixtureDir = new URL('../../../../../shared/fixtures/eva-vit/', import.meta.url).pathname;
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
const tiny = { hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 2, imageSize: 16, patchSize: 8 };
const sessions: OrtVisionEncoder[] = [];
const cacheDir = tempDir('bvllm-ve-onnx-');

/** Every parameter drawn at unit-ish scale, so a wrong layout or activation cannot hide behind small weights. */
function randomised(config: VitConfigInput, seed: number): VisionEncoder {
  const encoder = VisionEncoder.create(config, Rng.fromSeed(seed));
  const rng = Rng.fromSeed(seed + 100);
  for (const [key, v] of encoder.variables())
    tf.tidy(() => v.assign(tf.add(tf.mul(rng.normal(v.shape, 1), 0.3), key.includes('norm') && key.endsWith('weight') ? 1 : 0)));
  return encoder;
}

async function ortOf(encoder: VisionEncoder, file = join(tempDir('bvllm-ve-onnx-'), 'v.onnx'), quantize?: 'int8' | 'int4'): Promise<OrtVisionEncoder> {
  exportVisionEncoderOnnx(encoder, file, { quantize });
  const ort = await OrtVisionEncoder.open(encoder, file, { threads: 1 });
  sessions.push(ort);
  return ort;
}

beforeAll(async () => {
  await initBackend();
});
afterAll(async () => {
  for (const s of sessions) await s.release();
});

describe('exportVisionEncoderOnnx', () => {
  it('EVA (instructblip layout) matches the eva-vit fixture within 1e-4: raw cls/patches and post_layernorm', async () => {
    const expected = JSON.parse(readFileSync(`${fixtureDir}expected.json`, 'utf8'));
    const inputs = JSON.parse(readFileSync(`${fixtureDir}inputs.json`, 'utf8'));
    const encoder = VisionEncoder.load(fixtureDir);
    const file = join(tempDir('bvllm-ve-onnx-'), 'eva.onnx');
    const ort = await ortOf(encoder, file);
    checkModel(readFileSync(file));
    const pixels = tf.tidy(() => tf.transpose(tf.tensor4d(inputs.pixel_values), [0, 2, 3, 1]) as tf.Tensor4D);
    const raw = await ort.encode(pixels);
    const normed = await ort.encode(pixels, { output: 'postLayernorm' });
    const last = tf.tensor3d(expected.last_block_output);
    const post = tf.tensor3d(expected.post_layernorm);
    expect(raw.cls.shape).toEqual([2, 32]);
    expect(raw.patches.shape).toEqual([2, 16, 32]);
    const want = tf.tidy(() => ({ cls: tf.tensor2d(expected.cls_last_block_output), patches: tf.slice(last, [0, 1, 0], [2, 16, 32]), postPatches: tf.slice(post, [0, 1, 0], [2, 16, 32]) }));
    expect(maxDiff(raw.cls, want.cls)).toBeLessThan(1e-4);
    expect(maxDiff(raw.patches, want.patches)).toBeLessThan(1e-4);
    expect(maxDiff(normed.patches, want.postPatches)).toBeLessThan(1e-4);
    tf.dispose([pixels, raw.cls, raw.patches, normed.cls, normed.patches, last, post, want.cls, want.patches, want.postPatches]);
    encoder.dispose();
  });

  const layouts: [string, VitConfigInput][] = [
    ['instructblip', { ...tiny, family: 'instructblip' }],
    ['clip', { ...tiny, family: 'clip', hiddenAct: 'quick_gelu', layerNormEps: 1e-5 }],
    ['siglip (no [CLS]; cls = pooling head)', { ...tiny, family: 'siglip', hiddenAct: 'gelu_pytorch_tanh' }],
  ];
  for (const [name, config] of layouts)
    it(`${name} on random weights equals the tfjs tower for every output and split`, async () => {
      const encoder = randomised(config, 7);
      const ort = await ortOf(encoder);
      const pixels = tf.tidy(() => Rng.fromSeed(3).normal([3, 16, 16, 3]) as tf.Tensor4D);
      for (const options of [{}, { output: 'postLayernorm' as const }, { split: 'parity' as const }]) {
        const a = encoder.encode(pixels, options);
        const b = await ort.encode(pixels, options);
        expect(b.cls.shape).toEqual(a.cls.shape);
        expect(b.patches.shape).toEqual(a.patches.shape);
        expect(maxDiff(a.cls, b.cls)).toBeLessThan(1e-4);
        expect(maxDiff(a.patches, b.patches)).toBeLessThan(1e-4);
        tf.dispose([a.cls, a.patches, b.cls, b.patches]);
      }
      pixels.dispose();
      encoder.dispose();
    });

  it('int8 and int4 weights stay close to float32 and shrink the file', async () => {
    const encoder = randomised({ ...tiny, hiddenSize: 64, intermediateSize: 128, numHeads: 4 }, 9);
    const dir = tempDir('bvllm-ve-onnx-');
    const f32 = await ortOf(encoder, join(dir, 'f32.onnx'));
    const pixels = tf.tidy(() => Rng.fromSeed(4).normal([2, 16, 16, 3]) as tf.Tensor4D);
    const a = await f32.encode(pixels, { output: 'postLayernorm' });
    // LayerNormed tokens are O(1); block-wise quantisation keeps them within a bound that grows as bits shrink.
    for (const [quantize, bound, ratio] of [['int8', 0.25, 0.5], ['int4', 1.5, 0.3]] as const) {
      const q = await ortOf(encoder, join(dir, `${quantize}.onnx`), quantize);
      const b = await q.encode(pixels, { output: 'postLayernorm' });
      const error = maxDiff(a.patches, b.patches);
      expect(error).toBeGreaterThan(0);
      expect(error).toBeLessThan(bound);
      expect(statSync(join(dir, `${quantize}.onnx`)).size).toBeLessThan(ratio * statSync(join(dir, 'f32.onnx')).size);
      tf.dispose([b.cls, b.patches]);
    }
    tf.dispose([pixels, a.cls, a.patches]);
    encoder.dispose();
  });
});

describe('OrtVisionEncoder', () => {
  it('exports once per weights hash: a second create reuses the folder, a changed weight exports again', async () => {
    const encoder = randomised({ ...tiny, family: 'instructblip' }, 11);
    const first = await exportVisionEncoderCached(encoder, { cacheDir });
    const written = statSync(join(first, VISION_ONNX_FILE)).mtimeMs;
    expect(await exportVisionEncoderCached(encoder, { cacheDir })).toBe(first);
    expect(statSync(join(first, VISION_ONNX_FILE)).mtimeMs).toBe(written);
    const v = encoder.variables().get('post_layernorm.bias')!;
    tf.tidy(() => v.assign(tf.add(v, 0.5)));
    expect(await exportVisionEncoderCached(encoder, { cacheDir })).not.toBe(first);
    encoder.dispose();
  });

  it('encodeVideo equals the tfjs encoder, and repeated encodes leak no tensors', async () => {
    const video = colourVideo(join(tempDir(), 'v.mp4'), ['red', 'blue', 'lime'], { width: 40, height: 30 });
    const encoder = randomised({ ...tiny, family: 'instructblip' }, 12);
    const ort = await OrtVisionEncoder.create(encoder, { cacheDir, threads: 1 });
    sessions.push(ort);
    const a = await encoder.encodeVideo(video, { batchSize: 2 });
    const b = await ort.encodeVideo(video, { batchSize: 2 });
    expect(b.timestampsSec).toEqual(a.timestampsSec);
    expect(maxDiff(a.patches, b.patches)).toBeLessThan(1e-4);
    expect(maxDiff(a.cls, b.cls)).toBeLessThan(1e-4);
    tf.dispose([a.cls, a.patches, b.cls, b.patches]);
    const pixels = tf.zeros([2, 16, 16, 3]) as tf.Tensor4D;
    const once = async () => {
      const out = await ort.encode(pixels);
      tf.dispose([out.cls, out.patches]);
    };
    await once();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await once();
    expect(tf.memory().numTensors).toBe(before);
    await expect(ort.encode(tf.zeros([1, 8, 8, 3]) as tf.Tensor4D)).rejects.toThrow(/pixels/);
    pixels.dispose();
    encoder.dispose();
  });
});
