import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng, initBackend, readSafetensors, tf, type FrameFeatures } from '@bvllm/core';
import { OrtVisionEncoder, ffmpegPath } from '@bvllm/vision-encoder';
import { beforeAll, describe, expect, it } from 'vitest';
import { BvllmModel, disposeVisualPath } from './bvllm-model.js';
import { EncodedVideo } from './inference/encoded-video.js';
import { OrtSelect, OrtVision } from './inference/engines.js';
import { InferenceSession } from './inference-session.js';
import { loadModel } from './model-dir.js';
import { testAssets, testConfig, tfjsAnswer, shippedModelDir } from './test-model.js';
import { disposeFeatures, videoFeatures } from './video-features.js';

// issue #18 item 3: one inference path; its answers equal the training (tfjs) path's (spec §1.1 (a)–(e), §1.2, §3).
const fixture = fileURLToPath(new URL('../../../../shared/fixtures/bvllm-visual/', import.meta.url));
const inputs = JSON.parse(readFileSync(`${fixture}inputs.json`, 'utf8')) as { frame_features: number[][][] };
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
let dir: string;
let video: string;

beforeAll(async () => {
  await initBackend();
  dir = mkdtempSync(join(tmpdir(), 'bvllm-session-'));
  video = join(dir, 'v.mp4');
  const colours = ['red', 'blue', 'lime', 'yellow', 'white', 'navy'];
  const lavfi = colours.flatMap((c) => ['-f', 'lavfi', '-i', `color=c=${c}:s=64x64:r=5:d=1`]);
  const concat = `${colours.map((_, i) => `[${i}:v]`).join('')}concat=n=${colours.length}:v=1:a=0[v]`;
  execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', ...lavfi, '-filter_complex', concat, '-map', '[v]', '-pix_fmt', 'yuv420p', video]);
});

/** The test pipeline with the bvllm-visual fixture's selector, samplers and projector (Cv 24). */
function fixtureModel(): BvllmModel {
  const model = BvllmModel.create(testConfig(), testAssets());
  const weights = readSafetensors(`${fixture}model.safetensors`, (key) => !key.startsWith('vlm_att_ln_spatial.'));
  model.store.load(weights, { allowMissing: (key) => key.startsWith('vision_tower.') || key.startsWith('model.') || key.startsWith('lm_head.') });
  tf.dispose([...weights.values()]);
  return model;
}

function fixtureFeatures(): FrameFeatures {
  const [t, tokens, c] = [inputs.frame_features.length, inputs.frame_features[0]!.length, inputs.frame_features[0]![0]!.length];
  return tf.tidy(() => {
    const f = tf.tensor3d(inputs.frame_features);
    return {
      cls: tf.reshape(tf.slice(f, [0, 0, 0], [t, 1, c]), [t, c]) as tf.Tensor2D,
      patches: tf.slice(f, [0, 1, 0], [t, tokens - 1, c]) as tf.Tensor3D,
      timestampsSec: Array.from({ length: t }, (_, i) => i),
    };
  });
}

describe('InferenceSession', () => {
  it('visualPath on onnx equals BvllmModel.visualPath on tfjs for several seeds (frames, merge groups, visual embeddings)', async () => {
    const model = fixtureModel();
    const session = await InferenceSession.fromModel(model, { runtime: 'onnx' });
    expect(session.runtimes).toMatchObject({ vision: 'onnx', frameSelect: 'onnx', spatialSample: 'onnx', llm: 'onnx' });
    const features = fixtureFeatures();
    const encoded = await EncodedVideo.fromFeatures(features);
    const question = model.tokenizeQuestion('What colour is the square?');
    for (const seed of [0, 1, 2]) {
      const a = model.visualPath(features, question, { training: false, rng: Rng.fromSeed(seed) });
      const b = await session.visualPath(encoded, question, { training: false, rng: Rng.fromSeed(seed) });
      expect(Array.from(b.selection.frameIndices)).toEqual(Array.from(a.selection.frameIndices));
      expect(maxDiff(a.selection.frameWeights, b.selection.frameWeights)).toBeLessThan(1e-5);
      expect(maxDiff(a.selection.selected, b.selection.selected)).toBeLessThan(1e-4);
      expect(b.merged.groups).toEqual(a.merged.groups);
      expect(b.visualEmbeds.shape).toEqual(a.visualEmbeds.shape);
      expect(maxDiff(a.visualEmbeds, b.visualEmbeds)).toBeLessThan(1e-4);
      disposeVisualPath(a);
      disposeVisualPath(b);
    }
    const before = tf.memory().numTensors;
    const timings = {};
    disposeVisualPath(await session.visualPath(encoded, question, { training: false, rng: Rng.fromSeed(0), timings }));
    expect(tf.memory().numTensors).toBe(before);
    expect(Object.keys(timings).sort()).toEqual(['merge', 'sample', 'select']);
    await session.close();
    encoded.close();
    disposeFeatures(features);
    tf.dispose([question.inputIds, question.attentionMask]);
    model.dispose();
  });

  it('the test model: the session answers a video as the tfjs path does (visualPath + greedy decoding)', async () => {
    const model = BvllmModel.create(testConfig({ generation: { maxNewTokens: 6 } }), testAssets(), 5);
    const session = await InferenceSession.fromModel(model, { runtime: 'onnx' });
    const features = await videoFeatures(model, video);
    const encoded = await session.encode(video);
    // The ONNX tower's features equal the tfjs tower's (spec §1.0), read back from the patch store.
    const back = encoded.toFeatures();
    expect(maxDiff(back.patches, features.patches)).toBeLessThan(1e-4);
    expect(maxDiff(back.cls, features.cls)).toBeLessThan(1e-4);
    disposeFeatures(back);
    for (const seed of [0, 4]) {
      const a = await tfjsAnswer(model, features, 'What colour is the square?', seed);
      const b = await session.answer(encoded, [{ role: 'user', content: 'What colour is the square?' }], { seed });
      expect(b.selection.frames.map((f) => f.frameIndex)).toEqual(a.frames);
      expect(b.text).toBe(a.text);
    }
    encoded.close();
    await session.close();
    disposeFeatures(features);
    model.dispose();
  });

  it('the shipped default model: open() runs the ONNX tower, and answers equal the tfjs path for two seeds', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'bvllm-session-cache-'));
    const session = await InferenceSession.open(shippedModelDir(), { cacheDir });
    // Every module is an onnxruntime session on the export; no tfjs model was built for it.
    expect(session.vision).toBeInstanceOf(OrtVision);
    expect((session.vision as OrtVision).encoder).toBeInstanceOf(OrtVisionEncoder);
    expect(session.decoder.runtime).toBe('onnx');
    expect(readdirSync(session.exportDir!).sort()).toEqual(expect.arrayContaining(['frame-mix.onnx', 'frame-select.onnx', 'llm', 'manifest.json', 'spatial-sample.onnx', 'vision.onnx']));
    const model = loadModel(shippedModelDir());
    const features = await videoFeatures(model, video);
    const encoded = await session.encode(video);
    const back = encoded.toFeatures();
    // Relative to the features' scale: float32 rounding grows with it, and the shipped tower's features reach |x| ≈ 20.
    const scale = tf.tidy(() => tf.max(tf.abs(features.patches)).dataSync()[0]);
    expect(maxDiff(features.patches, back.patches) / scale).toBeLessThan(1e-5);
    disposeFeatures(back);
    for (const seed of [0, 3]) {
      const a = await tfjsAnswer(model, features, 'What colour is the square?', seed);
      const b = await session.answer(encoded, [{ role: 'user', content: 'What colour is the square?' }], { seed });
      expect(b.selection.frames.map((f) => f.frameIndex)).toEqual(a.frames);
      expect(b.text).toBe(a.text);
      expect(b.text.length).toBeGreaterThan(0);
    }
    // A second open finds the export (same fingerprint) instead of writing another.
    const again = await InferenceSession.open(shippedModelDir(), { cacheDir });
    expect(again.exportDir).toBe(session.exportDir);
    expect(readdirSync(cacheDir).filter((f) => f.startsWith('modules-'))).toHaveLength(1);
    await again.close();
    encoded.close();
    await session.close();
    disposeFeatures(features);
    model.dispose();
  });

  it('selection runs whole on onnx (score and mix graphs); runtime tfjs runs the model stages; a closed session refuses work', async () => {
    const model = fixtureModel();
    const onnx = await InferenceSession.fromModel(model, { runtime: 'onnx' });
    expect((onnx as unknown as { parts: { select: unknown; mix: unknown } }).parts.select).toBeInstanceOf(OrtSelect);
    expect((onnx as unknown as { parts: { select: unknown; mix: unknown } }).parts.mix).toBe((onnx as unknown as { parts: { select: unknown } }).parts.select);
    const tfjs = await InferenceSession.fromModel(model, { runtime: 'tfjs' });
    expect(tfjs.runtimes).toMatchObject({ vision: 'tfjs', frameSelect: 'tfjs', spatialSample: 'tfjs', llm: 'tfjs' });
    const features = fixtureFeatures();
    const encoded = await EncodedVideo.fromFeatures(features);
    const turns = [{ role: 'user' as const, content: 'What shape flashed briefly?' }];
    const a = await onnx.answer(encoded, turns, { seed: 1 });
    const b = await tfjs.answer(encoded, turns, { seed: 1 });
    expect(a.text).toBe(b.text);
    expect(a.selection.frames).toEqual(b.selection.frames);
    await onnx.close();
    await onnx.close();
    await expect(onnx.encode(video)).rejects.toThrow(/closed/);
    await tfjs.close();
    encoded.close();
    disposeFeatures(features);
    model.dispose();
  });

  it('the feature cache keeps an encoded video (f16 patches on disk) for the next question and the next session', async () => {
    const featureCacheDir = mkdtempSync(join(tmpdir(), 'bvllm-session-features-'));
    const model = BvllmModel.create(testConfig({ generation: { maxNewTokens: 3 } }), testAssets(), 5);
    const session = await InferenceSession.fromModel(model, { featureCacheDir });
    const first = await session.encode(video);
    expect(first.cacheHit).toBe(false);
    expect(first.patches.location).toBe('file');
    const second = await session.encode(video);
    expect(second.cacheHit).toBe(true);
    expect(Array.from(second.cls)).toEqual(Array.from(first.cls));
    const turns = [{ role: 'user' as const, content: 'What colour is the square?' }];
    expect((await session.answer(second, turns)).text).toBe((await session.answer(first, turns)).text);
    first.close();
    second.close();
    // Closing never deletes a cache entry.
    expect(readdirSync(featureCacheDir).some((f) => f.endsWith('.patches.f16'))).toBe(true);
    await session.close();
    model.dispose();
  });
});

describe('no runtime registry (issue #18 item 3)', () => {
  it('no module-level WeakMap keyed by the model is left, and the old runtime modules are gone', () => {
    const src = fileURLToPath(new URL('.', import.meta.url));
    const files = (readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) expect(readFileSync(join(src, file), 'utf8'), file).not.toMatch(/new WeakMap/);
    for (const gone of ['visual-runtime.ts', 'llm-runtime.ts', 'answer.ts']) expect(existsSync(join(src, gone))).toBe(false);
  });
});
