/**
 * The official `openai` client against the server on loopback: the API must look like OpenAI's to it, for
 * plain and streamed answers, images and videos, and multi-turn conversations about one video.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { initBackend, tf } from '@bvllm/core';
import { InferenceSession } from '@bvllm/pipeline';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dataUrl } from '../test/helpers.js';
import { createServer, type BvllmServer } from './build-server.js';
import type { SelectionPayload } from './chat-completion.js';

let session: InferenceSession;
let server: BvllmServer;
let client: OpenAI;
let name: string;
const clipUrl = () => pathToFileURL(join(inject('mediaRoot'), 'clip.mp4')).href;

beforeAll(async () => {
  await initBackend();
  session = await InferenceSession.open(inject('modelDir'));
  server = createServer(session, { mediaRoot: inject('mediaRoot'), port: 0, maxTokens: 8 });
  const url = await server.listen();
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  name = session.config.name;
});

afterAll(async () => {
  await server.close();
  await session.close();
});

type WithSelection = { bvllm?: { selection: SelectionPayload } };

describe('the openai client', () => {
  it('lists the one served model', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([name]);
  });

  it('answers a video question in one body, with usage and the selected frames', async () => {
    const completion = await client.chat.completions.create({
      model: name,
      max_tokens: 4,
      messages: [{ role: 'user', content: [{ type: 'video_url', video_url: { url: clipUrl() } } as never, { type: 'text', text: 'What colour is the square?' }] }],
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.id).toMatch(/^chatcmpl-/);
    const choice = completion.choices[0];
    expect(choice.message.role).toBe('assistant');
    expect(['stop', 'length']).toContain(choice.finish_reason);
    expect(completion.usage!.completion_tokens).toBeLessThanOrEqual(4);
    expect(completion.usage!.completion_tokens).toBe(session.assets.tokenizer.encode(choice.message.content!).length);
    const selection = (completion as WithSelection).bvllm!.selection;
    // tinyPipelineConfig: K = 4 queries, R = 4 tokens per kept frame, 1 fps sampling of the synthetic clip.
    expect(selection.frames.length).toBeGreaterThanOrEqual(1);
    expect(selection.frames.length).toBeLessThanOrEqual(4);
    expect(selection.visual_tokens).toBe(selection.frames.length * 4);
    // The prompt holds the text tokens plus every visual token.
    expect(completion.usage!.prompt_tokens).toBeGreaterThan(selection.visual_tokens);
    expect(completion.usage!.total_tokens).toBe(completion.usage!.prompt_tokens + completion.usage!.completion_tokens);
    const T = selection.frame_timestamps_sec.length;
    for (const row of selection.frame_weights) {
      expect(row).toHaveLength(T);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    }
    for (const f of selection.frames) {
      expect(f.timestamp_sec).toBe(selection.frame_timestamps_sec[f.frame_index]);
      expect(f.weight).toBeCloseTo(Math.max(...f.merged_queries.map((q) => selection.frame_weights[q][f.frame_index])), 6);
    }
  });

  it('streams the same answer as the plain request for the same seed, ending with the selection and usage', async () => {
    const messages = [{ role: 'user' as const, content: [{ type: 'image_url' as const, image_url: { url: dataUrl('dot.png', 'image/png') } }, { type: 'text' as const, text: 'What shape flashed briefly?' }] }];
    const plain = await client.chat.completions.create({ model: name, messages, max_tokens: 6, seed: 5 });
    const stream = await client.chat.completions.create({ model: name, messages, max_tokens: 6, seed: 5, stream: true, stream_options: { include_usage: true } });
    let text = '';
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe(plain.choices[0].message.content);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    const finish = chunks.find((c) => c.choices[0]?.finish_reason);
    expect(finish!.choices[0].finish_reason).toBe(plain.choices[0].finish_reason);
    // One image is one frame at 0 s.
    expect((finish as WithSelection).bvllm!.selection.frame_timestamps_sec).toEqual([0]);
    expect(chunks.at(-1)!.usage).toEqual(plain.usage);
  });

  it('samples with temperature and top_p, reproducibly for a seed; temperature 0 is greedy; stop ends the answer', async () => {
    const ask = (options: { seed?: number; temperature?: number; stop?: string }) =>
      client.chat.completions.create({
        model: name,
        max_tokens: 8,
        top_p: 0.95,
        ...options,
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl('dot.png', 'image/png') } }, { type: 'text', text: 'red or blue?' }] }],
      });
    const text = async (options: Parameters<typeof ask>[0]) => (await ask(options)).choices[0].message.content!;
    const sampled = await Promise.all([1, 2, 3, 4].map((seed) => text({ seed, temperature: 1.5 })));
    expect(await text({ seed: 1, temperature: 1.5 })).toBe(sampled[0]);
    // Four seeds at temperature 1.5 over an untrained model: not all four draws can coincide.
    expect(new Set(sampled).size).toBeGreaterThan(1);
    const greedy = await text({ seed: 1, temperature: 0 });
    expect(await text({ seed: 2, temperature: 0 })).toBe(greedy);
    expect(await text({ seed: 3 })).toBe(greedy);
    // Replaying a sampled answer with a stop string cut from it ends it just before that text.
    const full = sampled[0];
    expect(full.length).toBeGreaterThanOrEqual(2);
    const cut = full.slice(1, 2);
    const stopped = await ask({ seed: 1, temperature: 1.5, stop: cut });
    expect(stopped.choices[0].message.content).toBe(full.slice(0, full.indexOf(cut)));
    expect(stopped.choices[0].finish_reason).toBe('stop');
  });

  it('answers a follow-up about the same video from the feature cache, without re-encoding', async () => {
    const first = [{ type: 'video_url', video_url: { url: dataUrl('clip.mp4', 'video/mp4') } } as never, { type: 'text' as const, text: 'What colour is the square?' }];
    const one = await client.chat.completions.create({ model: name, max_tokens: 3, messages: [{ role: 'user', content: first }] });
    const tensors = tf.memory().numTensors;
    const two = await client.chat.completions.create({
      model: name,
      max_tokens: 3,
      messages: [
        { role: 'system', content: 'ignored' },
        { role: 'user', content: first },
        { role: 'assistant', content: one.choices[0].message.content ?? '' },
        { role: 'user', content: 'What shape flashed briefly?' },
      ],
    });
    expect((two as WithSelection).bvllm!.selection.feature_cache).toBe('hit');
    // The follow-up's prompt holds the first exchange too.
    expect(two.usage!.prompt_tokens).toBeGreaterThan(one.usage!.prompt_tokens);
    expect(tf.memory().numTensors).toBe(tensors);
    const metrics = await (await fetch(`${client.baseURL.replace('/v1', '')}/metrics`)).text();
    expect(metrics).toMatch(/^bvllm_feature_cache_total\{result="hit"\} [1-9]/m);
  });

  it('raises the typed client errors: unknown model (404), bad request (400), refused path (403)', async () => {
    const image = { type: 'image_url' as const, image_url: { url: dataUrl('dot.png', 'image/png') } };
    await expect(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: [image] }] })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    await expect(client.chat.completions.create({ model: name, messages: [{ role: 'user', content: 'no media' }] })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(
      client.chat.completions.create({ model: name, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }] }] }),
    ).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
  });
});
