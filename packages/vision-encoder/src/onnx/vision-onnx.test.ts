import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Rng, TensorSource, initBackend, readHfConfig, tf, type WeightSource } from '@bvllm/core';
import { checkModel, lazyWeight, sourceWeights, type QuantizePreset } from '@bvllm/onnx';
import { decodeVideo } from '../decode.js';
import { vitConfigFromHf } from '../hf-vit-config.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { colourVideo, tempDir } from '../test-videos.js';
import { VisionEncoder } from '../vision-encoder.js';
import type { VitConfigInput } from '../vit.js';
import { OrtVisionEncoder, type EncodedBatch } from './ort-vision-encoder.js';
import { buildVisionGraph, exportVisionEncoderOnnx, vitWeightsFrom } from './vision-onnx.js';

// issue #10: the tower exported to ONNX gives the tfjs tower's numbers (spec §1.0: EVA's last block, no final norm).
const fixtureDir = new URL('../../../../../shared/fixtures/eva-vit/', import.meta.url).pathname;
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
const tiny = { hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 2, imageSize: 16, patchSize: 8 };
const sessions: OrtVisionEncoder[] = [];

/** Every parameter drawn at unit-ish scale, so a wrong layout or activation cannot hide behind small weights. */
function randomised(config: VitConfigInput, seed: number): VisionEncoder {
  const encoder = VisionEncoder.create(config, Rng.fromSeed(seed));
  const rng = Rng.fromSeed(seed + 100);
  for (const [key, v] of encoder.variables())
    tf.tidy(() => v.assign(tf.add(tf.mul(rng.normal(v.shape, 1), 0.3), key.includes('norm') && key.endsWith('weight') ? 1 : 0)));
  return encoder;
}

/** A session on `file`, an export of `encoder`'s weights: the spec is the tower's config and identity. */
async function openOf(encoder: VisionEncoder, file: string): Promise<OrtVisionEncoder> {
  const ort = await OrtVisionEncoder.openFile({ vit: encoder.model.config, identity: encoder.identity() }, file, { threads: 1 });
  sessions.push(ort);
  return ort;
}

async function ortOf(encoder: VisionEncoder, file = join(tempDir('bvllm-ve-onnx-'), 'v.onnx'), quantize?: QuantizePreset): Promise<OrtVisionEncoder> {
  exportVisionEncoderOnnx(encoder, file, { quantize });
  return openOf(encoder, file);
}

beforeAll(async () => {
  await initBackend();
});
afterAll(async () => {
  for (const s of sessions) await s.release();
});

/** The fixture's pixels NHWC and the expected raw last block, read from its files. */
function evaFixture() {
  const expected = JSON.parse(readFileSync(`${fixtureDir}expected.json`, 'utf8'));
  const inputs = JSON.parse(readFileSync(`${fixtureDir}inputs.json`, 'utf8'));
  const pixels = tf.tidy(() => tf.transpose(tf.tensor4d(inputs.pixel_values), [0, 2, 3, 1]) as tf.Tensor4D);
  return { expected, pixels };
}

/** The eva-vit folder exported straight from its safetensors (lazy weights, issue #18), opened without a tfjs tower. */
async function streamedEva(dtype?: 'float16'): Promise<OrtVisionEncoder> {
  const vit = vitConfigFromHf(readHfConfig(fixtureDir), 'instructblip');
  const source = TensorSource.fromDir(fixtureDir);
  const file = join(tempDir('bvllm-ve-onnx-'), 'eva.onnx');
  const written = exportVisionEncoderOnnx(vitWeightsFrom(vit, sourceWeights(source)), file, { dtype });
  source.close();
  // A graph with lazy initializers streams its weights to external data.
  expect(written.dataPath).toBeDefined();
  const identity = { family: vit.family, layout: 'instructblip' as const, config: { ...vit }, weightsSha256: 'eva-vit fixture' };
  const ort = await OrtVisionEncoder.openFile({ vit, identity }, file, { threads: 1 });
  sessions.push(ort);
  return ort;
}

describe('exportVisionEncoderOnnx from a WeightSource (issue #18)', () => {
  it('EVA streamed from the eva-vit safetensors equals the fixture and the tfjs-path export within 1e-4 (spec §1.0)', async () => {
    const { expected, pixels } = evaFixture();
    const streamed = await streamedEva();
    const encoder = VisionEncoder.load(fixtureDir);
    const fromTower = await ortOf(encoder);
    const a = await streamed.encode(pixels);
    const b = await fromTower.encode(pixels);
    const last = tf.tensor3d(expected.last_block_output);
    const [batch, tokens, c] = last.shape;
    const wantPatches = tf.slice(last, [0, 1, 0], [batch, tokens - 1, c]);
    const wantCls = tf.tensor2d(expected.cls_last_block_output);
    expect(maxDiff(a.cls, wantCls)).toBeLessThan(1e-4);
    expect(maxDiff(a.patches, wantPatches)).toBeLessThan(1e-4);
    expect(maxDiff(a.patches, b.patches)).toBeLessThan(1e-5);
    expect(streamed.identity().weightsSha256).toBe('eva-vit fixture');
    tf.dispose([pixels, a.cls, a.patches, b.cls, b.patches, last, wantPatches, wantCls]);
    encoder.dispose();
  });

  for (const options of [{}, { quantize: 'int4' as const }, { dtype: 'float16' as const }])
    it(`building reads no tensor; the export (${JSON.stringify(options)}) reads every eva-vit tensor exactly once (bounded memory)`, () => {
      const vit = vitConfigFromHf(readHfConfig(fixtureDir), 'instructblip');
      const inner = TensorSource.fromDir(fixtureDir);
      const reads = new Map<string, number>();
      const source: Pick<WeightSource, 'has' | 'info' | 'read'> = {
        has: (k) => inner.has(k),
        info: (k) => inner.info(k),
        read: (k) => (reads.set(k, (reads.get(k) ?? 0) + 1), inner.read(k)),
      };
      buildVisionGraph(vitWeightsFrom(vit, sourceWeights(source)));
      expect(reads.size).toBe(0);
      exportVisionEncoderOnnx(vitWeightsFrom(vit, sourceWeights(source)), join(tempDir('bvllm-ve-onnx-'), 'eva.onnx'), options);
      expect([...reads.keys()].sort()).toEqual(inner.keys().sort());
      expect(Math.max(...reads.values())).toBe(1);
      inner.close();
    });

  it('float16 weights run on onnxruntime CPU within f16 tolerance of the fixture', async () => {
    const { expected, pixels } = evaFixture();
    const half = await streamedEva('float16');
    const out = await half.encode(pixels, { output: 'postLayernorm' });
    const post = tf.tensor3d(expected.post_layernorm);
    const [batch, tokens, c] = post.shape;
    const want = tf.slice(post, [0, 1, 0], [batch, tokens - 1, c]);
    // f16 keeps 11 significant bits (relative step 2⁻¹⁰ ≈ 1e-3); three blocks of O(1) LayerNormed values stay well under 0.05.
    const error = maxDiff(out.patches, want);
    expect(error).toBeGreaterThan(0);
    expect(error).toBeLessThan(5e-2);
    tf.dispose([pixels, out.cls, out.patches, post, want]);
  });
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
    it(`${name} on random weights equals the tfjs tower for every output and split, from eager and from lazy weights`, async () => {
      const encoder = randomised(config, 7);
      const ort = await ortOf(encoder);
      // The same weights lazily, as a checkpoint gives them: the layout changes then run inside load() (issue #18).
      const store = encoder.model.store;
      const lazy = vitWeightsFrom(encoder.model.config, {
        has: (k) => store.has(k),
        get: (k) => lazyWeight(store.get(k).shape, () => store.get(k).dataSync().slice() as Float32Array),
      });
      const lazyFile = join(tempDir('bvllm-ve-onnx-'), 'lazy.onnx');
      exportVisionEncoderOnnx(lazy, lazyFile);
      const fromLazy = await openOf(encoder, lazyFile);
      const pixels = tf.tidy(() => Rng.fromSeed(3).normal([3, 16, 16, 3]) as tf.Tensor4D);
      for (const options of [{}, { output: 'postLayernorm' as const }, { split: 'parity' as const }]) {
        const a = encoder.encode(pixels, options);
        const b = await ort.encode(pixels, options);
        const c = await fromLazy.encode(pixels, options);
        expect(b.cls.shape).toEqual(a.cls.shape);
        expect(b.patches.shape).toEqual(a.patches.shape);
        expect(maxDiff(a.cls, b.cls)).toBeLessThan(1e-4);
        expect(maxDiff(a.patches, b.patches)).toBeLessThan(1e-4);
        // Lazy and eager weights write the same initializers, so the outputs are equal bit for bit.
        expect(maxDiff(b.cls, c.cls)).toBe(0);
        expect(maxDiff(b.patches, c.patches)).toBe(0);
        tf.dispose([a.cls, a.patches, b.cls, b.patches, c.cls, c.patches]);
      }
      pixels.dispose();
      encoder.dispose();
    });

  it('int8, int4 and dynamic-int8 weights stay close to float32 and shrink the file', async () => {
    const encoder = randomised({ ...tiny, hiddenSize: 64, intermediateSize: 128, numHeads: 4 }, 9);
    const dir = tempDir('bvllm-ve-onnx-');
    const f32 = await ortOf(encoder, join(dir, 'f32.onnx'));
    const pixels = tf.tidy(() => Rng.fromSeed(4).normal([2, 16, 16, 3]) as tf.Tensor4D);
    const a = await f32.encode(pixels, { output: 'postLayernorm' });
    // LayerNormed tokens are O(1); quantisation keeps them within a bound that grows as bits shrink (dynamic-int8's
    // 63-level weights: twice int8's 127-level bound).
    for (const [quantize, bound, ratio] of [['int8', 0.25, 0.5], ['int4', 1.5, 0.3], ['dynamic-int8', 0.5, 0.5]] as const) {
      const q = await ortOf(encoder, join(dir, `${quantize}.onnx`), quantize);
      const b = await q.encode(pixels, { output: 'postLayernorm' });
      const error = maxDiff(a.patches, b.patches);
      expect(error).toBeGreaterThan(0);
      console.log(`[vision ${quantize}] max |error| of post-LayerNorm tokens ${error.toExponential(2)} (bound ${bound})`);
      expect(error).toBeLessThan(bound);
      expect(statSync(join(dir, `${quantize}.onnx`)).size).toBeLessThan(ratio * statSync(join(dir, 'f32.onnx')).size);
      tf.dispose([b.cls, b.patches]);
    }
    tf.dispose([pixels, a.cls, a.patches]);
    encoder.dispose();
  });
});

describe('OrtVisionEncoder', () => {
  it('encodeBatches hands each batch as plain arrays in frame order, equal to the tfjs encoder (bounded patch store, issue #18)', async () => {
    const path = colourVideo(join(tempDir(), 'b.mp4'), ['red', 'blue', 'lime'], { width: 40, height: 30 });
    const encoder = randomised({ ...tiny, family: 'instructblip' }, 13);
    const ort = await ortOf(encoder);
    const video = await decodeVideo(path);
    const want = await encoder.encodeFrames(video, { batchSize: 2 });
    const batches: EncodedBatch[] = [];
    const done = await ort.encodeBatches(video, { batchSize: 2, onBatch: (b) => void batches.push(b) });
    const [t, n, c] = want.patches.shape;
    expect(done).toEqual({ numFrames: t, numPatches: n, timestampsSec: want.timestampsSec });
    expect(batches.map((b) => [b.start, b.count])).toEqual(Array.from({ length: Math.ceil(t / 2) }, (_, i) => [2 * i, Math.min(2, t - 2 * i)]));
    for (const b of batches) {
      const cls = tf.slice(want.cls, [b.start, 0], [b.count, c]);
      const patches = tf.slice(want.patches, [b.start, 0, 0], [b.count, n, c]);
      expect(maxDiff(cls, tf.tensor2d(b.cls, [b.count, c]))).toBeLessThan(1e-4);
      expect(maxDiff(patches, tf.tensor3d(b.patches, [b.count, b.numPatches, c]))).toBeLessThan(1e-4);
      tf.dispose([cls, patches]);
    }
    tf.dispose([want.cls, want.patches]);
    encoder.dispose();
  });

  it('encodeVideo equals the tfjs encoder, and repeated encodes leak no tensors', async () => {
    const video = colourVideo(join(tempDir(), 'v.mp4'), ['red', 'blue', 'lime'], { width: 40, height: 30 });
    const encoder = randomised({ ...tiny, family: 'instructblip' }, 12);
    const ort = await ortOf(encoder);
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
