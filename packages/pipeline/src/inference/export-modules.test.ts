import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, Rng, TensorSource, initBackend, storeSource, tf, type FrameFeatures } from '@bvllm/core';
import { OrtDecoder, Qwen2Model } from '@bvllm/llm-bridge';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BvllmModel } from '../bvllm-model.js';
import { InferenceSession } from '../inference-session.js';
import { parsePipelineConfig } from '../pipeline-config.js';
import { testAssets, testConfig, shippedModelDir } from '../test-model.js';
import { disposeFeatures } from '../video-features.js';
import { EncodedVideo } from './encoded-video.js';
import { MODULES_DIR, MODULES_MANIFEST, exportModules, exportedModules, folderExportSource, folderFingerprint, modulesKey, readModulesManifest, storeFingerprint } from './export-modules.js';

// issue #18: the four modules exported from a WeightSource (one tensor at a time), keyed by a cheap fingerprint.
const llmDir = fileURLToPath(new URL('../../../../../shared/fixtures/qwen2-tiny-s2/', import.meta.url));
let features: FrameFeatures;
let dir: string;

beforeAll(async () => {
  await initBackend();
  const rng = Rng.fromSeed(7);
  // Four frames of ViT output (Cv 24, N 4 patches): the answer path from features on, no video needed.
  features = { cls: rng.normal([4, 24], 1) as tf.Tensor2D, patches: rng.normal([4, 4, 24], 1) as tf.Tensor3D, timestampsSec: [0.5, 1.5, 2.5, 3.5] };
  dir = mkdtempSync(join(tmpdir(), 'bvllm-export-modules-'));
});
afterAll(() => {
  disposeFeatures(features);
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  delete process.env.BVLLM_LLM_RUNTIME;
  delete process.env.BVLLM_VISUAL_RUNTIME;
  delete process.env.BVLLM_ORT_PROVIDERS;
});

/** The test pipeline around the qwen2-tiny-s2 decoder (D 64). */
function fixtureModel(): BvllmModel {
  const { llm: _, ...rest } = testConfig({ generation: { maxNewTokens: 8 } });
  const config = { ...rest, llm: { vocabSize: 300, hiddenSize: 64, intermediateSize: 160, numLayers: 3, numHeads: 8, numKvHeads: 2, ropeTheta: 1e6, rmsNormEps: 1e-6 } };
  return BvllmModel.create(config, testAssets(), 2, { llm: Qwen2Model.load(llmDir) });
}

const turns = [{ role: 'user' as const, content: 'What shape flashed briefly?' }];

describe('exportModules', () => {
  it('writes the four modules and a manifest from a WeightSource; the key follows the fingerprint, config and options', async () => {
    const model = fixtureModel();
    const out = join(dir, 'modules');
    const fingerprint = storeFingerprint(model.store);
    const seen: string[] = [];
    const manifest = await exportModules(storeSource(model.store), model.config, out, { fingerprint, onModule: (m) => seen.push(m) });
    expect(seen).toEqual(['vision', 'frameSelect', 'spatialSample', 'llm']);
    expect(readModulesManifest(out)).toEqual(manifest);
    expect(manifest.modules).toEqual({ vision: 'vision.onnx', frameSelect: 'frame-select.onnx', spatialSample: { file: 'spatial-sample.onnx', projector: true }, llm: 'llm' });
    expect(manifest.options).toEqual({ visionQuantize: 'none', llmQuantize: 'none', dtype: 'float32' });
    expect(OrtDecoder.exists(join(out, 'llm'))).toBe(true);
    expect(existsSync(join(out, 'frame-mix.onnx'))).toBe(true);
    expect(manifest.key).toBe(modulesKey(fingerprint, model.config));
    expect(modulesKey(fingerprint, model.config, { llmQuantize: 'int8' })).not.toBe(manifest.key);
    expect(modulesKey('other', model.config)).not.toBe(manifest.key);
    // The name and generation defaults do not change a graph, so they do not change the key.
    expect(modulesKey(fingerprint, { ...model.config, name: 'renamed', generation: { maxNewTokens: 1 } })).toBe(manifest.key);
    // Stages without an exporter get no entry: they run runtime-neutral in the session.
    const uniform = parsePipelineConfig(testConfig({ frameSelect: { kind: 'uniform', numFrames: 3 }, spatialSample: { kind: 'none' } }));
    const plain = BvllmModel.create(uniform, testAssets(), 1);
    const bare = await exportModules(storeSource(plain.store), uniform, join(dir, 'bare'));
    expect(bare.modules.frameSelect).toBeUndefined();
    expect(bare.modules.spatialSample).toBeUndefined();
    plain.dispose();
    model.dispose();
  });

  it('a folder fingerprint reads headers only and changes with the file; open() prefers <dir>/onnx when its key matches', async () => {
    const folder = join(dir, 'model');
    cpSync(shippedModelDir(), folder, { recursive: true });
    const before = folderFingerprint(folder);
    expect(folderFingerprint(folder)).toBe(before);
    utimesSync(join(folder, 'model.safetensors'), new Date(), new Date(Date.now() + 5000));
    const after = folderFingerprint(folder);
    expect(after).not.toBe(before);
    // As `bvllm convert` leaves it: the export inside the model folder, for its current weights (the shipped model
    // keeps its LoRA unmerged: read merged, and fingerprinted as such).
    const config = parsePipelineConfig((await import('../model-dir.js')).readModelConfig(folder));
    const bare = TensorSource.fromDir(folder);
    await exportModules(bare, config, join(folder, MODULES_DIR), { fingerprint: after });
    bare.close();
    // An export of the bare base weights is not the folder's: open() passes it over for a fresh, merged one.
    const passedOver = await InferenceSession.open(folder, { cacheDir: join(dir, 'bare-cache') });
    expect(passedOver.exportDir!.startsWith(join(dir, 'bare-cache'))).toBe(true);
    await passedOver.close();
    const { read, fingerprint } = folderExportSource(folder, config);
    expect(fingerprint).toBe(`${after}:lora-merged`);
    const source = read();
    await exportModules(source, config, join(folder, MODULES_DIR), { fingerprint });
    source.close();
    const cacheDir = join(dir, 'empty-cache');
    const session = await InferenceSession.open(folder, { cacheDir });
    expect(session.exportDir).toBe(join(folder, MODULES_DIR));
    expect(existsSync(cacheDir) ? readdirSync(cacheDir) : []).toEqual([]);
    await session.close();
    // Stale (the weights changed since): the cache gets a fresh export instead.
    utimesSync(join(folder, 'model.safetensors'), new Date(), new Date(Date.now() + 10_000));
    const stale = await exportedModules(() => TensorSource.fromDir(folder), config, cacheDir, { fingerprint: folderFingerprint(folder), preferred: join(folder, MODULES_DIR) });
    expect(stale.exported).toBe(true);
    expect(stale.dir.startsWith(cacheDir)).toBe(true);
    expect(existsSync(join(stale.dir, MODULES_MANIFEST))).toBe(true);
  });
});

describe('fromModel', () => {
  it('exports once (LoRA merged for the export, unmerged after) and answers as the tfjs model with the adapter', async () => {
    const cacheDir = join(dir, 'cache');
    const withLora = () => {
      const model = fixtureModel();
      const lora = model.attachLora({ r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, Rng.fromSeed(1));
      // B starts at zero (a no-op adapter); a trained-looking B makes merging matter.
      for (const [key, v] of lora.variables()) if (key.includes('lora_B')) v.assign(tf.mul(tf.onesLike(v), 0.05));
      return model;
    };
    const adapted = withLora();
    const onnx = await InferenceSession.fromModel(adapted, { cacheDir });
    expect(adapted.lora?.merged).toBe(false);
    const tfjs = await InferenceSession.fromModel(adapted, { runtime: 'tfjs' });
    // Equal weights reuse the export; other weights get another.
    const twin = withLora();
    const again = await InferenceSession.fromModel(twin, { cacheDir });
    expect(again.exportDir).toBe(onnx.exportDir);
    const plainModel = fixtureModel();
    const plain = await InferenceSession.fromModel(plainModel, { cacheDir });
    expect(plain.exportDir).not.toBe(onnx.exportDir);
    const video = await EncodedVideo.fromFeatures(features);
    const a = await onnx.answer(video, turns, { seed: 1, generation: { maxNewTokens: 10 } });
    const b = await tfjs.answer(video, turns, { seed: 1, generation: { maxNewTokens: 10 } });
    const c = await plain.answer(video, turns, { seed: 1, generation: { maxNewTokens: 10 } });
    expect(a.text.length).toBeGreaterThan(0);
    expect(a.text).toBe(b.text);
    // Same frames and groups; the weights agree to float rounding (ONNX and tfjs kernels).
    expect(a.selection.frames.map((f) => [f.frameIndex, f.mergedQueries])).toEqual(b.selection.frames.map((f) => [f.frameIndex, f.mergedQueries]));
    a.selection.frameWeights.flat().forEach((w, i) => expect(w).toBeCloseTo(b.selection.frameWeights.flat()[i]!, 5));
    expect(a.text).not.toBe(c.text);
    video.close();
    for (const s of [onnx, tfjs, again, plain]) await s.close();
    for (const m of [adapted, twin, plainModel]) m.dispose();
  });

  it('engines: BVLLM_LLM_RUNTIME / BVLLM_VISUAL_RUNTIME override the config and are validated, as is BVLLM_ORT_PROVIDERS', async () => {
    expect(parsePipelineConfig(testConfig()).runtime).toMatchObject({ llm: 'onnx', llmQuantize: 'none', vision: 'onnx' });
    expect(() => parsePipelineConfig({ ...testConfig(), runtime: { llm: 'webgpu' } })).toThrow(ConfigError);
    const model = fixtureModel();
    process.env.BVLLM_LLM_RUNTIME = 'tfjs';
    process.env.BVLLM_VISUAL_RUNTIME = 'tfjs';
    const session = await InferenceSession.fromModel(model);
    expect(session.runtimes).toEqual({ vision: 'tfjs', frameSelect: 'tfjs', spatialSample: 'tfjs', llm: 'tfjs' });
    expect(session.decoder.runtime).toBe('tfjs');
    await session.close();
    process.env.BVLLM_LLM_RUNTIME = 'gpu';
    await expect(InferenceSession.fromModel(model)).rejects.toThrow(ConfigError);
    delete process.env.BVLLM_LLM_RUNTIME;
    delete process.env.BVLLM_VISUAL_RUNTIME;
    process.env.BVLLM_ORT_PROVIDERS = 'cpu,tpu';
    await expect(InferenceSession.fromModel(model, { cacheDir: join(dir, 'cache') })).rejects.toThrow(/BVLLM_ORT_PROVIDERS names tpu/);
    model.dispose();
  });
});
