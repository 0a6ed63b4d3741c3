/**
 * The server answers on the ONNX tower (issue #18 item 3): its one InferenceSession's vision module is the
 * onnxruntime export, and a request's features are computed by exactly that module (then served from the feature
 * cache on a follow-up), never by a tfjs tower.
 */
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@bvllm/core';
import { InferenceSession, VideoChat, evaluateSplit } from '@bvllm/pipeline';
import { OrtVisionEncoder } from '@bvllm/vision-encoder';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dataUrl } from '../test/helpers.js';
import { createServer, type BvllmServer } from './build-server.js';

let session: InferenceSession;
let server: BvllmServer;
let url: string;
const calls: number[] = [];

beforeAll(async () => {
  await initBackend();
  session = await InferenceSession.open(inject('modelDir'));
  // Records every batch the session's tower encodes, then lets it run.
  const encode = session.vision.encode.bind(session.vision);
  session.vision.encode = (pixels, batch) => {
    calls.push(batch);
    return encode(pixels, batch);
  };
  server = createServer(session, { port: 0, maxTokens: 4 });
  url = await server.listen();
});

afterAll(async () => {
  await server.close();
  await session.close();
});

async function ask(): Promise<{ choices: { message: { content: string } }[]; bvllm: { selection: { feature_cache: string } } }> {
  const messages = [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl('dot.png', 'image/png') } }, { type: 'text', text: 'What colour is the square?' }] }];
  const response = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: session.config.name, messages, max_tokens: 2 }) });
  expect(response.status).toBe(200);
  return (await response.json()) as Awaited<ReturnType<typeof ask>>;
}

describe('the server on the ONNX tower', () => {
  it("a request's features come from the session's onnxruntime tower; the follow-up reads the feature cache", async () => {
    expect(session.runtimes).toEqual({ vision: 'onnx', frameSelect: 'onnx', spatialSample: 'onnx', llm: 'onnx' });
    expect((session.vision as unknown as { encoder: unknown }).encoder).toBeInstanceOf(OrtVisionEncoder);
    expect(session.decoder.runtime).toBe('onnx');
    const first = await ask();
    expect(first.bvllm.selection.feature_cache).toBe('miss');
    // One image: one frame, encoded once, by the ONNX module.
    expect(calls).toEqual([1]);
    const second = await ask();
    expect(second.bvllm.selection.feature_cache).toBe('hit');
    expect(calls).toEqual([1]);
    expect(second.choices[0]!.message.content).toBe(first.choices[0]!.message.content);
  });

  it('one session serves the server, a VideoChat and evaluateSplit, with the same greedy answer', async () => {
    const question = 'What colour is the square?';
    const messages = [{ role: 'user', content: [{ type: 'video_url', video_url: { url: dataUrl('clip.mp4', 'video/mp4') } }, { type: 'text', text: question }] }];
    const response = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: session.config.name, messages, max_tokens: 3, temperature: 0 }) });
    const served = ((await response.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    const chat = await VideoChat.open(session, join(inject('mediaRoot'), 'clip.mp4'));
    let chatted = '';
    for await (const delta of chat.ask(question, { generation: { maxNewTokens: 3 } })) chatted += delta;
    chat.dispose();
    const split = mkdtempSync(join(tmpdir(), 'bvllm-one-session-'));
    copyFileSync(join(inject('mediaRoot'), 'clip.mp4'), join(split, 'clip.mp4'));
    writeFileSync(join(split, 'test.json'), JSON.stringify([{ id: 'q0', video: 'clip.mp4', conversations: [{ from: 'human', value: `<video>\n${question}` }, { from: 'gpt', value: 'red' }] }]));
    // The eval answers with the model's own generation defaults; the tiny model's are long, so compare the prefix.
    const evaluated = (await evaluateSplit(session, join(split, 'test.json'))).answers[0]!.output;
    expect(served.length).toBeGreaterThan(0);
    expect(chatted).toBe(served);
    expect(evaluated.startsWith(served)).toBe(true);
  });
});
