import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, Rng, initBackend, tf, type FrameFeatures } from '@bvllm/core';
import { OrtDecoder, Qwen2Model } from '@bvllm/llm-bridge';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { answer } from './answer.js';
import { BvllmModel } from './bvllm-model.js';
import { LLM_ONNX_DIR, exportedLlm, inferenceDecoder, llmRuntime, releaseInferenceDecoder, rememberModelDir } from './llm-runtime.js';
import { parsePipelineConfig } from './pipeline-config.js';
import { testAssets, testConfig } from './test-model.js';
import { disposeFeatures } from './video-features.js';

const llmDir = fileURLToPath(new URL('../../../../shared/fixtures/qwen2-tiny-s2/', import.meta.url));
const onnxDir = fileURLToPath(new URL('../../../../shared/fixtures/qwen2-tiny-s2-onnx/', import.meta.url));
let features: FrameFeatures;
let dir: string;

beforeAll(async () => {
  await initBackend();
  const rng = Rng.fromSeed(7);
  // Four frames of ViT output (Cv 24, N 4 patches): the answer path from features on, no video needed.
  features = { cls: rng.normal([4, 24], 1) as tf.Tensor2D, patches: rng.normal([4, 4, 24], 1) as tf.Tensor3D, timestampsSec: [0.5, 1.5, 2.5, 3.5] };
  dir = mkdtempSync(join(tmpdir(), 'bvllm-runtime-'));
  // A model folder shipping its decoder as an ONNX export (the fixture's, of the same qwen2-tiny-s2 weights).
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  symlinkSync(onnxDir, join(dir, LLM_ONNX_DIR));
});
afterAll(() => {
  disposeFeatures(features);
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  delete process.env.BVLLM_LLM_RUNTIME;
  delete process.env.BVLLM_ORT_PROVIDERS;
});

/** The test pipeline around the qwen2-tiny-s2 decoder (D 64), on the given runtime. */
function fixtureModel(runtime: 'tfjs' | 'onnx'): BvllmModel {
  const { llm: _, ...rest } = testConfig({ generation: { maxNewTokens: 8 } });
  const config = { ...rest, llm: { vocabSize: 300, hiddenSize: 64, intermediateSize: 128, numLayers: 3, numHeads: 8, numKvHeads: 2 }, runtime: { llm: runtime } };
  return BvllmModel.create(config, testAssets(), 2, { llm: Qwen2Model.load(llmDir) });
}

describe('runtime config', () => {
  it('runtime.llm defaults to onnx with f32 weights; BVLLM_LLM_RUNTIME overrides it and is validated', () => {
    const parsed = parsePipelineConfig(testConfig());
    expect(parsed.runtime).toMatchObject({ llm: 'onnx', llmQuantize: 'none' });
    expect(() => parsePipelineConfig({ ...testConfig(), runtime: { llm: 'webgpu' } })).toThrow(ConfigError);
    const model = fixtureModel('onnx');
    process.env.BVLLM_LLM_RUNTIME = 'tfjs';
    expect(llmRuntime(model)).toBe('tfjs');
    process.env.BVLLM_LLM_RUNTIME = 'gpu';
    expect(() => llmRuntime(model)).toThrow(ConfigError);
    model.dispose();
  });
});

describe('inference decoder', () => {
  it('a model folder with onnx/llm answers on onnxruntime with the same greedy text as tfjs, sessions reused', async () => {
    const onnx = fixtureModel('onnx');
    rememberModelDir(onnx, dir);
    const tfjs = fixtureModel('tfjs');
    // An unknown execution provider is a ConfigError, and a failed build is not cached.
    process.env.BVLLM_ORT_PROVIDERS = 'cpu,tpu';
    await expect(inferenceDecoder(onnx)).rejects.toThrow(/BVLLM_ORT_PROVIDERS names tpu/);
    process.env.BVLLM_ORT_PROVIDERS = 'cpu';
    const decoder = await inferenceDecoder(onnx);
    expect(decoder).toBeInstanceOf(OrtDecoder);
    expect(await inferenceDecoder(onnx)).toBe(decoder);
    expect((await inferenceDecoder(tfjs)).runtime).toBe('tfjs');
    const turns = [{ role: 'user' as const, content: 'What colour is the square?' }];
    const a = await answer(onnx, features, turns, { seed: 3, generation: { maxNewTokens: 10 } });
    const b = await answer(tfjs, features, turns, { seed: 3, generation: { maxNewTokens: 10 } });
    expect(a.text.length).toBeGreaterThan(0);
    expect(a.text).toBe(b.text);
    expect(a.selection).toEqual(b.selection);
    onnx.dispose();
    tfjs.dispose();
  });

  it('without a shipped export, the LLM is exported once (LoRA merged) and answers as tfjs with the adapter', async () => {
    const cacheDir = join(dir, 'cache');
    const withLora = (runtime: 'tfjs' | 'onnx') => {
      const model = fixtureModel(runtime);
      const lora = model.attachLora({ r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, Rng.fromSeed(1));
      // B starts at zero (a no-op adapter); a trained-looking B makes merging matter.
      for (const [key, v] of lora.variables()) if (key.includes('lora_B')) v.assign(tf.mul(tf.onesLike(v), 0.05));
      return model;
    };
    const onnx = withLora('onnx');
    const tfjs = withLora('tfjs');
    const folder = await exportedLlm(onnx, { cacheDir });
    expect(onnx.lora?.merged).toBe(false);
    expect(OrtDecoder.exists(folder)).toBe(true);
    // Equal weights reuse the folder; changed weights get a new one.
    expect(await exportedLlm(tfjs, { cacheDir })).toBe(folder);
    const plain = fixtureModel('onnx');
    expect(await exportedLlm(plain, { cacheDir })).not.toBe(folder);
    const turns = [{ role: 'user' as const, content: 'What shape flashed briefly?' }];
    const decoder = await inferenceDecoder(onnx, { cacheDir });
    expect((decoder as OrtDecoder).dir).toBe(folder);
    // Released (as training does), the next answer builds a new decoder; equal weights find the cached export.
    await releaseInferenceDecoder(onnx);
    const rebuilt = await inferenceDecoder(onnx, { cacheDir });
    expect(rebuilt).not.toBe(decoder);
    expect((rebuilt as OrtDecoder).dir).toBe(folder);
    const a = await answer(onnx, features, turns, { seed: 1, generation: { maxNewTokens: 10 } });
    const b = await answer(tfjs, features, turns, { seed: 1, generation: { maxNewTokens: 10 } });
    const c = await answer(plain, features, turns, { seed: 1, generation: { maxNewTokens: 10 } });
    expect(a.text).toBe(b.text);
    expect(a.text).not.toBe(c.text);
    for (const m of [onnx, tfjs, plain]) m.dispose();
  });
});
