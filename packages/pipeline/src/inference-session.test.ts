import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, Rng, initBackend, readSafetensors, tf, type FrameFeatures } from '@bvllm/core';
import { OrtVisionEncoder, ffmpegPath } from '@bvllm/vision-encoder';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { answer } from './answer.js';
import { BvllmModel } from './bvllm-model.js';
import { defaultModelDir } from './default-model.js';
import { loadModel } from './model-dir.js';
import { testAssets, testConfig } from './test-model.js';
import { disposeFeatures, videoFeatures } from './video-features.js';
import { inferenceFrameEncoder, inferenceVisualPath, prepareInference, releaseVisualRuntime, visualRuntime } from './visual-runtime.js';

// issue #10: the visual modules on onnxruntime give the tfjs path's frames, tokens and answers.
const fixture = fileURLToPath(new URL('../../../../shared/fixtures/bvllm-visual/', import.meta.url));
const inputs = JSON.parse(readFileSync(`${fixture}inputs.json`, 'utf8')) as { frame_features: number[][][] };
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
const tfjsVisual = { vision: 'tfjs', frameSelect: 'tfjs', spatialSample: 'tfjs' } as const;

beforeAll(async () => {
  await initBackend();
});
afterEach(() => {
  delete process.env.BVLLM_VISUAL_RUNTIME;
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
  return tf.tidy(() => {
    const f = tf.tensor3d(inputs.frame_features);
    return { cls: tf.reshape(tf.slice(f, [0, 0, 0], [7, 1, 24]), [7, 24]) as tf.Tensor2D, patches: tf.slice(f, [0, 1, 0], [7, 8, 24]) as tf.Tensor3D, timestampsSec: [0, 1, 2, 3, 4, 5, 6] };
  });
}

describe('visual runtimes', () => {
  it('prepareInference exports every onnx module (decoder, tower, both Q-Former stages) before the first question', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'bvllm-prepare-'));
    const model = fixtureModel();
    await prepareInference(model, { cacheDir });
    expect(readdirSync(cacheDir).length).toBe(4);
    model.config.runtime.spatialSample = 'tfjs';
    const tfjsOnly = mkdtempSync(join(tmpdir(), 'bvllm-prepare-'));
    await releaseVisualRuntime(model);
    await prepareInference(model, { cacheDir: tfjsOnly });
    // The decoder was built (and cached in memory) by the first call; the tower and selector are exported again.
    expect(readdirSync(tfjsOnly).length).toBe(2);
    await releaseVisualRuntime(model);
    model.dispose();
  });

  it('default to onnx where an exporter exists; tfjs for kinds without one; BVLLM_VISUAL_RUNTIME overrides and is validated', () => {
    const model = BvllmModel.create(testConfig(), testAssets());
    expect(model.config.runtime).toMatchObject({ vision: 'onnx', visionQuantize: 'none', frameSelect: 'onnx', spatialSample: 'onnx' });
    expect(['vision', 'frameSelect', 'spatialSample'].map((m) => visualRuntime(model, m as 'vision'))).toEqual(['onnx', 'onnx', 'onnx']);
    process.env.BVLLM_VISUAL_RUNTIME = 'tfjs';
    expect(visualRuntime(model, 'frameSelect')).toBe('tfjs');
    process.env.BVLLM_VISUAL_RUNTIME = 'gpu';
    expect(() => visualRuntime(model, 'vision')).toThrow(ConfigError);
    model.dispose();
    const uniform = BvllmModel.create(testConfig({ frameSelect: { kind: 'uniform', numFrames: 4 }, spatialSample: { kind: 'none' } }), testAssets());
    delete process.env.BVLLM_VISUAL_RUNTIME;
    expect(visualRuntime(uniform, 'frameSelect')).toBe('tfjs');
    expect(visualRuntime(uniform, 'spatialSample')).toBe('tfjs');
    uniform.dispose();
  });

  it('inferenceVisualPath on onnx equals visualPath on tfjs for several seeds (frames, merge groups, visual embeddings)', async () => {
    const model = fixtureModel();
    const features = fixtureFeatures();
    const question = model.tokenizeQuestion('What colour is the square?');
    for (const seed of [0, 1, 2]) {
      const a = model.visualPath(features, question, { training: false, rng: Rng.fromSeed(seed) });
      const b = await inferenceVisualPath(model, features, question, { training: false, rng: Rng.fromSeed(seed) });
      expect(Array.from(b.selection.frameIndices)).toEqual(Array.from(a.selection.frameIndices));
      expect(b.merged.groups).toEqual(a.merged.groups);
      expect(b.visualEmbeds.shape).toEqual(a.visualEmbeds.shape);
      expect(maxDiff(a.visualEmbeds, b.visualEmbeds)).toBeLessThan(1e-4);
      for (const p of [a, b]) tf.dispose([p.selection.frameWeights, p.selection.selected, p.merged.merged, p.spatialTokens, p.visualEmbeds]);
    }
    const before = tf.memory().numTensors;
    const again = await inferenceVisualPath(model, features, question, { training: false, rng: Rng.fromSeed(0) });
    tf.dispose([again.selection.frameWeights, again.selection.selected, again.merged.merged, again.spatialTokens, again.visualEmbeds]);
    expect(tf.memory().numTensors).toBe(before);
    await releaseVisualRuntime(model);
    disposeFeatures(features);
    tf.dispose([question.inputIds, question.attentionMask]);
    model.dispose();
  });

  it('the default model gives the same features, selected frames and greedy answer with its visual modules on onnx and on tfjs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bvllm-visual-rt-'));
    const video = join(dir, 'v.mp4');
    const colours = ['red', 'blue', 'lime', 'yellow', 'white', 'navy'];
    const lavfi = colours.flatMap((c) => ['-f', 'lavfi', '-i', `color=c=${c}:s=64x64:r=5:d=1`]);
    const concat = `${colours.map((_, i) => `[${i}:v]`).join('')}concat=n=${colours.length}:v=1:a=0[v]`;
    execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', ...lavfi, '-filter_complex', concat, '-map', '[v]', '-pix_fmt', 'yuv420p', video]);
    const onnx = loadModel(defaultModelDir());
    const tfjs = loadModel(defaultModelDir());
    // The LLM runs on tfjs in both, so any difference comes from the visual modules.
    onnx.config.runtime.llm = 'tfjs';
    Object.assign(tfjs.config.runtime, { llm: 'tfjs', ...tfjsVisual });
    expect(await inferenceFrameEncoder(onnx)).toBeInstanceOf(OrtVisionEncoder);
    const fa = await videoFeatures(tfjs, video);
    const fb = await videoFeatures(onnx, video);
    // Relative to the features' scale: float32 rounding grows with it, and the shipped tower's features reach |x| ≈ 20.
    const scale = tf.tidy(() => tf.max(tf.abs(fa.patches)).dataSync()[0]);
    expect(maxDiff(fa.patches, fb.patches) / scale).toBeLessThan(1e-5);
    const turns = [{ role: 'user' as const, content: 'What colour is the square?' }];
    for (const seed of [0, 3]) {
      const a = await answer(tfjs, fa, turns, { seed });
      const b = await answer(onnx, fb, turns, { seed });
      expect(b.selection.frames.map((f) => f.frameIndex)).toEqual(a.selection.frames.map((f) => f.frameIndex));
      expect(b.text).toBe(a.text);
      expect(b.text.length).toBeGreaterThan(0);
    }
    disposeFeatures(fa);
    disposeFeatures(fb);
    onnx.dispose();
    tfjs.dispose();
  });
});
