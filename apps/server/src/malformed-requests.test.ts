/**
 * Every malformed or refused request gets its OpenAI error body and status, and none of them hurts the server:
 * afterwards it still answers, and holds no more tensors than before.
 */
import { copyFileSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { initBackend, tf } from '@bvllm/core';
import { InferenceSession } from '@bvllm/pipeline';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dataUrl } from '../test/helpers.js';
import { createServer, type BvllmServer } from './build-server.js';

let session: InferenceSession;
let server: BvllmServer;
let url: string;
let root: string;
const file = (name: string) => pathToFileURL(join(root, name)).href;

beforeAll(async () => {
  await initBackend();
  session = await InferenceSession.open(inject('modelDir'));
  // A media root of its own: the clip, and a symlink that leads out of the root.
  root = mkdtempSync(join(tmpdir(), 'bvllm-root-'));
  copyFileSync(join(inject('mediaRoot'), 'clip.mp4'), join(root, 'clip.mp4'));
  symlinkSync(join(inject('scratch'), 'secret.mp4'), join(root, 'link.mp4'));
  server = createServer(session, { mediaRoot: root, port: 0, bodyLimitBytes: 400_000, maxMediaBytes: 200_000, maxTokens: 16 });
  url = await server.listen();
});

afterAll(async () => {
  await server.close();
  await session.close();
});

const user = (content: unknown) => [{ role: 'user', content }];
const withMedia = (mediaUrl: string, kind = 'video_url') => user([{ type: kind, [kind]: { url: mediaUrl } }, { type: 'text', text: 'What colour is the square?' }]);
const ok = () => ({ model: session.config.name, max_tokens: 2, messages: withMedia(dataUrl('dot.png', 'image/png'), 'image_url') });

interface Case {
  name: string;
  /** A JSON value, or raw text sent as is. */
  body: unknown;
  contentType?: string;
  path?: string;
  status: number;
  type: string;
  code: string;
  param?: string | null;
}

const cases: () => Case[] = () => [
  { name: 'bad JSON', body: '{"model": "x", "messages": [', status: 400, type: 'invalid_request_error', code: 'invalid_json' },
  { name: 'not JSON at all', body: 'hello', contentType: 'text/plain', status: 415, type: 'invalid_request_error', code: 'unsupported_content_type' },
  { name: 'messages missing', body: { model: session.config.name }, status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'messages' },
  { name: 'messages of the wrong type', body: { model: session.config.name, messages: 'hi' }, status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'messages' },
  { name: 'max_tokens as a string', body: { ...ok(), max_tokens: '5' }, status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'max_tokens' },
  { name: 'max_tokens over the limit', body: { ...ok(), max_tokens: 17 }, status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'max_tokens' },
  { name: 'temperature out of range', body: { ...ok(), temperature: 3 }, status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'temperature' },
  { name: 'stream not a boolean', body: { ...ok(), stream: 'yes' }, status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'stream' },
  { name: 'n > 1', body: { ...ok(), n: 2 }, status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'n' },
  { name: 'unknown role', body: { ...ok(), messages: [{ role: 'robot', content: 'hi' }] }, status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'messages[0].role' },
  {
    name: 'unknown content part',
    body: { ...ok(), messages: user([{ type: 'audio_url', audio_url: { url: 'data:audio/wav;base64,AA==' } }]) },
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_value',
    param: 'messages[0].content[0]',
  },
  { name: 'video_url without url', body: { ...ok(), messages: user([{ type: 'video_url', video_url: {} }]) }, status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'messages[0].content[0].video_url.url' },
  { name: 'no media', body: { ...ok(), messages: user('What colour?') }, status: 400, type: 'invalid_request_error', code: 'media_required', param: 'messages' },
  {
    name: 'two media',
    body: { ...ok(), messages: user([{ type: 'video_url', video_url: { url: file('clip.mp4') } }, { type: 'video_url', video_url: { url: file('clip.mp4') } }]) },
    status: 400,
    type: 'invalid_request_error',
    code: 'too_many_media',
    param: 'messages[0].content[1].video_url.url',
  },
  { name: 'last turn not a question', body: { ...ok(), messages: [...withMedia(file('clip.mp4')), { role: 'assistant', content: 'red' }] }, status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'messages' },
  // 1,500 words are more positions than the test model's context of 1,024 (tinyPipelineConfig).
  { name: 'prompt too long', body: { ...ok(), messages: user([{ type: 'video_url', video_url: { url: file('clip.mp4') } }, { type: 'text', text: 'red '.repeat(1500) }]) }, status: 400, type: 'invalid_request_error', code: 'context_length_exceeded', param: 'messages' },
  { name: 'unknown model', body: { ...ok(), model: 'gpt-4o' }, status: 404, type: 'not_found_error', code: 'model_not_found', param: 'model' },
  { name: 'oversized body', body: { ...ok(), padding: 'x'.repeat(500_000) }, status: 413, type: 'invalid_request_error', code: 'request_too_large' },
  {
    name: 'oversized media',
    body: { ...ok(), messages: withMedia(`data:video/mp4;base64,${Buffer.alloc(250_000).toString('base64')}`) },
    status: 413,
    type: 'invalid_request_error',
    code: 'media_too_large',
    param: 'messages[0].content[0].video_url.url',
  },
  { name: 'missing media file', body: { ...ok(), messages: withMedia(file('nope.mp4')) }, status: 400, type: 'invalid_request_error', code: 'media_not_found', param: 'messages[0].content[0].video_url.url' },
  { name: 'media that is not a video', body: { ...ok(), messages: withMedia(`data:video/mp4;base64,${Buffer.from('not a video at all').toString('base64')}`) }, status: 400, type: 'invalid_request_error', code: 'unsupported_media_type' },
  { name: 'data URL not base64', body: { ...ok(), messages: withMedia('data:video/mp4,abc') }, status: 400, type: 'invalid_request_error', code: 'invalid_url' },
  { name: 'data URL of an unsupported type', body: { ...ok(), messages: withMedia('data:text/html;base64,PGh0bWw+') }, status: 400, type: 'invalid_request_error', code: 'unsupported_media_type' },
  { name: 'path traversal with ..', body: { ...ok(), messages: withMedia(`file://${root}/../${join(inject('scratch'), 'secret.mp4')}`) }, status: 403, type: 'permission_error', code: 'media_outside_root' },
  { name: 'path traversal with %2e%2e', body: { ...ok(), messages: withMedia(`file://${root}/%2e%2e/%2e%2e/%2e%2e/etc/passwd`) }, status: 403, type: 'permission_error', code: 'media_outside_root' },
  { name: 'absolute path outside the root', body: { ...ok(), messages: withMedia('file:///etc/passwd', 'image_url') }, status: 403, type: 'permission_error', code: 'media_outside_root' },
  { name: 'symlink out of the root', body: { ...ok(), messages: withMedia(file('link.mp4')) }, status: 403, type: 'permission_error', code: 'media_outside_root' },
  { name: 'remote URL', body: { ...ok(), messages: withMedia('http://169.254.169.254/latest/meta-data') }, status: 403, type: 'permission_error', code: 'remote_media_disabled' },
  { name: 'unsupported URL scheme', body: { ...ok(), messages: withMedia('ftp://example.com/a.mp4') }, status: 400, type: 'invalid_request_error', code: 'invalid_url' },
  { name: 'unknown route', body: {}, path: '/v1/completions', status: 404, type: 'not_found_error', code: 'route_not_found' },
];

describe('malformed requests', () => {
  it('each gets its status and OpenAI error, and the server still answers afterwards with no leaked tensors', async () => {
    const first = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ok()) });
    expect(first.status).toBe(200);
    const tensors = tf.memory().numTensors;
    for (const c of cases()) {
      const response = await fetch(`${url}${c.path ?? '/v1/chat/completions'}`, {
        method: 'POST',
        headers: { 'content-type': c.contentType ?? 'application/json' },
        body: typeof c.body === 'string' ? c.body : JSON.stringify(c.body),
      });
      const body = (await response.json()) as { error: { message: string; type: string; code: string; param: string | null } };
      expect({ name: c.name, status: response.status, type: body.error?.type, code: body.error?.code }).toEqual({ name: c.name, status: c.status, type: c.type, code: c.code });
      if (c.param !== undefined) expect({ name: c.name, param: body.error.param }).toEqual({ name: c.name, param: c.param });
      expect(typeof body.error.message).toBe('string');
      // Never a stack trace, never a server-side path outside what the client sent.
      expect(body.error.message).not.toMatch(/\n\s+at |node_modules/);
    }
    const after = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ok()) });
    expect(after.status).toBe(200);
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
