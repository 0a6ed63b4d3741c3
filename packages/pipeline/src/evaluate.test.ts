import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, tf } from '@bvllm/core';
import { ffmpegPath } from '@bvllm/vision-encoder';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BvllmModel } from './bvllm-model.js';
import { evaluateSplit, readEvalSplit } from './evaluate.js';
import { InferenceSession } from './inference-session.js';
import { testAssets, testConfig } from './test-model.js';

let dir: string;
const models = new Map<string, BvllmModel>();
const sessions = new Map<string, InferenceSession>();
const questions = ['What colour is the square?', 'What shape flashed briefly?', 'red or blue?', 'What colour?', 'circle?'];

beforeAll(async () => {
  await initBackend();
  dir = mkdtempSync(join(tmpdir(), 'bvllm-eval-'));
  for (const [name, colour] of [['a.mp4', 'red'], ['b.mp4', 'blue']])
    execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', `color=c=${colour}:s=32x32:r=4:d=2`, '-pix_fmt', 'yuv420p', join(dir, name)]);
  // Two MCQA and three open questions over two videos, in the official JSON format.
  const entries = questions.map((q, i) => ({
    id: `q${i}`,
    video: i < 3 ? 'a.mp4' : 'b.mp4',
    ...(i % 2 === 0 && { options: ['(A) red', '(B) blue'] }),
    conversations: [
      { from: 'human', value: `<video>\n${q}` },
      { from: 'gpt', value: i % 2 === 0 ? 'A' : 'red' },
    ],
  }));
  writeFileSync(join(dir, 'test.json'), JSON.stringify(entries));
  // Sampled (per-row generators, as one-at-a-time): greedy output of random tiny weights is the same for every prompt.
  for (const llm of ['tfjs', 'onnx'] as const) {
    const model = BvllmModel.create(testConfig({ generation: { maxNewTokens: 6, doSample: true, temperature: 3, topP: 1 }, runtime: { llm } }), testAssets(), 4);
    models.set(llm, model);
    sessions.set(llm, await InferenceSession.fromModel(model));
  }
});
afterAll(async () => {
  for (const session of sessions.values()) await session.close();
  for (const model of models.values()) model.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(['tfjs', 'onnx'])('evaluateSplit on %s (spec §4.1)', (runtime) => {
  it('batched answers (3 at a time, across videos) equal one-at-a-time answers and the session\'s answer(), sampled per row', async () => {
    const session = sessions.get(runtime)!;
    expect(session.decoder.runtime).toBe(runtime);
    const batched = await evaluateSplit(session, join(dir, 'test.json'), { batchSize: 3, seed: 2 });
    const single = await evaluateSplit(session, join(dir, 'test.json'), { batchSize: 1, seed: 2 });
    expect(batched.answers).toEqual(single.answers);
    expect(batched.mcqa?.report.overall.total).toBe(3);
    expect(batched.open?.overall.total).toBe(2);
    const video = await session.encode(join(dir, 'a.mp4'));
    const direct = await session.answer(video, [{ role: 'user', content: questions[1]! }], { seed: 2 });
    video.close();
    expect(batched.answers[1]!.output).toBe(direct.text);
    expect(new Set(batched.answers.map((a) => a.output)).size).toBeGreaterThan(2);
  });

  it('takes per-call frame sampling and generation overrides, as session.answer does, and reports where answers hit the limit', async () => {
    const session = sessions.get(runtime)!;
    const sampling = { mode: 'uniform' as const, numFrames: 3 };
    const generation = { maxNewTokens: 2 };
    const result = await evaluateSplit(session, join(dir, 'test.json'), { batchSize: 2, seed: 2, sampling, generation });
    const video = await session.encode(join(dir, 'a.mp4'), { sampling });
    expect(video.numFrames).toBe(3);
    const direct = await session.answer(video, [{ role: 'user', content: questions[1]! }], { seed: 2, generation });
    video.close();
    expect(result.answers[1]!.output).toBe(direct.text);
    expect(result.answers[1]!.finishReason).toBe(direct.finishReason);
    // Temperature 3 over random weights rarely draws EOS in two tokens: most answers stop at the limit.
    expect(result.answers.filter((a) => a.finishReason === 'length').length).toBeGreaterThan(0);
    expect(result.answers.every((a) => ['length', 'eos', 'stop', 'context'].includes(a.finishReason))).toBe(true);
  });

  it('leaks no tensors', async () => {
    const session = sessions.get(runtime)!;
    await evaluateSplit(session, join(dir, 'test.json'), { batchSize: 2, limit: 3 });
    const before = tf.memory().numTensors;
    await evaluateSplit(session, join(dir, 'test.json'), { batchSize: 2, limit: 3 });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('readEvalSplit', () => {
  it('refuses a missing file, a non-JSON file, a non-array and an entry without its fields, naming the file', () => {
    const bad = (name: string, text?: string) => {
      const path = join(dir, name);
      if (text !== undefined) writeFileSync(path, text);
      return () => readEvalSplit(path);
    };
    expect(bad('none.json')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/none\.json: no such file$/) }));
    expect(bad('text.json', 'not json')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('text.json: not JSON') }));
    expect(bad('object.json', '{"a": 1}')).toThrow(/object\.json: expected a JSON array/);
    expect(bad('entry.json', '[{"id": "q0", "video": "a.mp4"}]')).toThrow(/entry\.json: entry 0 needs "id", "video" and "conversations"/);
    expect(readEvalSplit(join(dir, 'test.json')).map((v) => [v.video, v.questions.length])).toEqual([['a.mp4', 3], ['b.mp4', 2]]);
  });
});
