import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointFormatError, QuestionTokenizer, Rng, WeightsError, initBackend, tf } from '@bvllm/core';
import { ffmpegPath } from '@bvllm/vision-encoder';
import { beforeAll, describe, expect, it } from 'vitest';
import { BvllmModel } from './bvllm-model.js';
import { CONFIG_FILE, QUESTION_TOKENIZER_DIR, loadModel, saveModel } from './model-dir.js';
import { buildAssetsDir, testAssets, testConfig } from './test-model.js';
import { InferenceSession } from './inference-session.js';
import { VideoChat } from './video-chat.js';
import { disposeFeatures, videoFeatures } from './video-features.js';

let dir: string;
let assetsDir: string;
let video: string;

beforeAll(async () => {
  await initBackend();
  dir = mkdtempSync(join(tmpdir(), 'bvllm-pipeline-'));
  assetsDir = join(dir, 'assets');
  video = join(dir, 'clip.mp4');
  // Four seconds, one colour each: a real H.264 file for the whole decode → encode → select → answer path.
  const inputs = ['red', 'green', 'blue', 'yellow'].flatMap((c) => ['-f', 'lavfi', '-i', `color=c=${c}:s=32x32:r=4:d=1`]);
  execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', ...inputs, '-filter_complex', '[0:v][1:v][2:v][3:v]concat=n=4:v=1:a=0[v]', '-map', '[v]', '-pix_fmt', 'yuv420p', video]);
});

async function savedModel(seed: number): Promise<{ model: BvllmModel; path: string }> {
  buildAssetsDir(assetsDir);
  const model = BvllmModel.create(testConfig({ lora: { r: 2, alpha: 4, dropout: 0 } }), testAssets(), seed);
  const path = join(dir, `model-${seed}`);
  saveModel(model, path, assetsDir);
  return { model, path };
}

describe('model folders', () => {
  it('round-trips every weight (LoRA included) and answers identically after loading', async () => {
    const { model, path } = await savedModel(3);
    expect(JSON.parse(readFileSync(join(path, CONFIG_FILE), 'utf8')).format).toBe('bvllm-pipeline');
    const loaded = loadModel(path);
    expect(loaded.store.keys().sort()).toEqual(model.store.keys().sort());
    for (const key of model.store.keys()) expect(tf.tidy(() => tf.max(tf.abs(tf.sub(model.store.get(key), loaded.store.get(key)))).dataSync()[0])).toBe(0);
    const features = await videoFeatures(model, video);
    expect(features.timestampsSec).toEqual([0.5, 1.5, 2.5, 3.5]);
    disposeFeatures(features);
    // The folder answers as the model it was saved from: one session on each.
    const fromMemory = await InferenceSession.fromModel(model);
    const fromFolder = await InferenceSession.open(path);
    const turns = [{ role: 'user' as const, content: 'What colour is the square?' }];
    const va = await fromMemory.encode(video);
    const vb = await fromFolder.encode(video);
    const a = await fromMemory.answer(va, turns, { seed: 5 });
    const b = await fromFolder.answer(vb, turns, { seed: 5 });
    expect(b.text).toBe(a.text);
    expect(b.selection).toEqual(a.selection);
    expect(a.selection.frames.every((f) => f.timestampSec >= 0.5 && f.timestampSec <= 3.5)).toBe(true);
    va.close();
    vb.close();
    await fromMemory.close();
    await fromFolder.close();
    model.dispose();
    loaded.dispose();
  });

  it('a folder with a trained (unmerged) LoRA answers on onnx as the model does: the adapter is merged on the direct path', async () => {
    buildAssetsDir(assetsDir);
    const model = BvllmModel.create(testConfig({ lora: { r: 2, alpha: 4, dropout: 0 }, generation: { maxNewTokens: 6 } }), testAssets(), 9);
    // A trained adapter: B is no longer zero (a fresh one changes nothing, so it would not show a dropped adapter).
    const rng = Rng.fromSeed(11);
    for (const [key, v] of model.lora!.variables()) if (key.includes('lora_B')) v.assign(tf.tensor(rng.uniformArray(v.size).map((x: number) => x - 0.5), v.shape));
    const path = join(dir, 'model-lora-trained');
    saveModel(model, path, assetsDir);
    const questions = ['What colour is the square?', 'What shape flashed briefly?', 'red or blue?'];
    const answers = async (session: InferenceSession) => {
      const video_ = await session.encode(video);
      const out: string[] = [];
      for (const q of questions) out.push((await session.answer(video_, [{ role: 'user', content: q }], { seed: 2 })).text);
      video_.close();
      await session.close();
      return out;
    };
    // The model in memory (its onnx export merges the adapter first) against the folder opened straight to onnx.
    const reference = await answers(await InferenceSession.fromModel(model, { runtime: 'onnx' }));
    expect(await answers(await InferenceSession.open(path, { runtime: 'onnx' }))).toEqual(reference);
    // And the adapter matters to these answers: without it (B zero again) the model answers otherwise.
    for (const [key, v] of model.lora!.variables()) if (key.includes('lora_B')) v.assign(tf.zerosLike(v));
    expect(await answers(await InferenceSession.fromModel(model, { runtime: 'onnx' }))).not.toEqual(reference);
    model.dispose();
  });

  it('refuses a folder that is not a model, a newer format, and mismatched weights', async () => {
    expect(() => loadModel(dir)).toThrow(CheckpointFormatError);
    const { model, path } = await savedModel(4);
    model.dispose();
    const config = JSON.parse(readFileSync(join(path, CONFIG_FILE), 'utf8'));
    writeFileSync(join(path, CONFIG_FILE), JSON.stringify({ ...config, formatVersion: 2 }));
    expect(() => loadModel(path)).toThrow(/format version 2 is not supported/);
    writeFileSync(join(path, CONFIG_FILE), JSON.stringify({ ...config, llm: { ...config.llm, hiddenSize: 48, numHeads: 4 } }));
    expect(() => loadModel(path)).toThrow(WeightsError);
    // The question tokenizer travels with the model: the copy encodes as the original.
    expect(QuestionTokenizer.fromDir(join(path, QUESTION_TOKENIZER_DIR)).encodeIds('what colour')).toEqual(testAssets().questionTokenizer.encodeIds('what colour'));
  });
});

describe('VideoChat', () => {
  it('encodes once, re-selects per question, and keeps the history', async () => {
    const model = BvllmModel.create(testConfig(), testAssets(), 1);
    const featureCacheDir = join(dir, 'cache');
    const session = await InferenceSession.fromModel(model, { featureCacheDir });
    const chat = await VideoChat.open(session, video);
    let first = '';
    for await (const delta of chat.ask('What colour is the square?', { seed: 1 })) first += delta;
    // Answering keeps no tensors (a leak here grows a server's memory per request).
    const before = tf.memory().numTensors;
    const second = chat.ask('What shape flashed briefly?', { seed: 1 });
    let next = await second.next();
    while (!next.done) next = await second.next();
    expect(tf.memory().numTensors).toBe(before);
    expect(chat.turns.map((t) => t.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(chat.turns[1].content).toBe(first);
    expect(next.value.selection.promptTokens).toBeGreaterThan(next.value.selection.visualTokens);
    chat.dispose();
    // The same video again is served from the cache, not re-encoded.
    const again = await VideoChat.open(session, video);
    expect(again.video.cacheHit).toBe(true);
    again.dispose();
    await session.close();
    model.dispose();
  });
});
