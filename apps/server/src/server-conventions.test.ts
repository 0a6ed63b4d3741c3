/**
 * Server conventions and per-request controls (issue #20 items 5 and 6), over real HTTP: the API key, the Host
 * check, Node-parser errors in the OpenAI shape (raw sockets, since fetch cannot send them), each unsupported
 * parameter, the frame controls echoed in the selection, and SIGTERM with an idle keep-alive client.
 */
import { connect } from 'node:net';
import { Agent, request as httpRequest } from 'node:http';
import { initBackend } from '@bvllm/core';
import { InferenceSession } from '@bvllm/pipeline';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dataUrl, exited, startProcess } from '../test/helpers.js';
import { createServer, type BvllmServer } from './build-server.js';
import { UNSUPPORTED_PARAMETERS } from './unsupported-params.js';

let session: InferenceSession;
let server: BvllmServer;
let url: string;

beforeAll(async () => {
  await initBackend();
  session = await InferenceSession.open(inject('modelDir'));
  server = createServer(session, { port: 0, apiKey: 'sk-test', maxTokens: 8 });
  url = await server.listen();
});

afterAll(async () => {
  await server.close();
  await session.close();
});

const auth = { authorization: 'Bearer sk-test', 'content-type': 'application/json' };
const image = () => [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl('dot.png', 'image/png') } }, { type: 'text', text: 'What colour?' }] }];
const video = () => [{ role: 'user', content: [{ type: 'video_url', video_url: { url: dataUrl('clip.mp4', 'video/mp4') } }, { type: 'text', text: 'What colour?' }] }];
const chat = (body: Record<string, unknown>, headers: Record<string, string> = auth) =>
  fetch(`${url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ model: session.config.name, max_tokens: 2, messages: image(), ...body }) });
const errorOf = async (r: Response) => ((await r.json()) as { error: { type: string; code: string; param: string | null; message: string } }).error;

/** Sends raw bytes and returns the raw response text (the server closes the connection after a parser error). */
function raw(text: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(text));
    let out = '';
    socket.on('data', (d) => (out += d.toString()));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

describe('API key', () => {
  it('refuses /v1 without or with a wrong key (401 invalid_api_key), answers with the right one, leaves /health open', async () => {
    for (const headers of [{ 'content-type': 'application/json' }, { ...auth, authorization: 'Bearer sk-wrong' }]) {
      const r = await chat({}, headers);
      expect(r.status).toBe(401);
      expect(await errorOf(r)).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key' });
    }
    expect((await fetch(`${url}/v1/models`)).status).toBe(401);
    expect((await chat({})).status).toBe(200);
    expect((await fetch(`${url}/health`)).status).toBe(200);
  });
});

describe('Host check', () => {
  it('answers loopback names and refuses a rebinding name with 403 host_not_allowed', async () => {
    const get = (host: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const { port } = new URL(url);
        const req = httpRequest({ host: '127.0.0.1', port, path: '/health', headers: { host } }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    for (const host of ['localhost:8000', '127.0.0.1', '[::1]:1234']) expect((await get(host)).status, host).toBe(200);
    const refused = await get('evil.example:8000');
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body).error).toMatchObject({ type: 'permission_error', code: 'host_not_allowed' });
  });

  it('--allowed-hosts replaces the default list', async () => {
    const named = createServer(session, { port: 0, allowedHosts: ['bvllm.internal'] });
    const base = await named.listen();
    try {
      expect((await fetch(`${base}/health`)).status).toBe(403);
    } finally {
      await named.close();
    }
  });
});

describe("Node parser errors in OpenAI's shape", () => {
  for (const [name, request, status, code] of [
    ['a bad Content-Length', 'POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n', 400, 'invalid_content_length'],
    ['a 64 KiB header', `GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, 431, 'headers_too_large'],
    ['a malformed request line', 'NOT HTTP\r\n\r\n', 400, 'invalid_http'],
  ] as const)
    it(name, async () => {
      const text = await raw(request);
      expect(text.startsWith(`HTTP/1.1 ${status} `)).toBe(true);
      const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
      expect(body.error).toMatchObject({ type: 'invalid_request_error', code, param: null });
    });
});

describe('unsupported parameters', () => {
  const values: Record<string, unknown> = {
    logprobs: true,
    top_logprobs: 2,
    tools: [{ type: 'function', function: { name: 'f', parameters: {} } }],
    tool_choice: 'auto',
    functions: [{ name: 'f' }],
    function_call: 'auto',
    parallel_tool_calls: 'yes',
    response_format: { type: 'json_object' },
    frequency_penalty: 0.5,
    presence_penalty: 0.5,
    logit_bias: { '1': 5 },
    audio: { voice: 'x' },
    modalities: ['audio'],
    prediction: { type: 'content', content: 'x' },
    best_of: 2,
    echo: true,
    suffix: 'x',
  };
  it('covers every listed parameter', () => expect(Object.keys(values).sort()).toEqual([...UNSUPPORTED_PARAMETERS].sort()));
  for (const [param, value] of Object.entries(values))
    it(`${param} gets a 400 naming it`, async () => {
      const r = await chat({ [param]: value });
      expect(r.status).toBe(400);
      expect(await errorOf(r)).toMatchObject({ type: 'invalid_request_error', code: 'unsupported_parameter', param });
    });
  it('neutral values pass (clients send them by default)', async () => {
    const r = await chat({ logprobs: false, frequency_penalty: 0, presence_penalty: 0, tools: [], response_format: { type: 'text' }, logit_bias: {} });
    expect(r.status).toBe(200);
  });
});

describe('per-request frame controls', () => {
  type Sel = { bvllm: { selection: { frame_timestamps_sec: number[]; frames: unknown[]; visual_tokens: number; sampling: Record<string, unknown> } } };
  const selection = async (body: Record<string, unknown>) => {
    const r = await chat({ messages: video(), ...body });
    expect(r.status, JSON.stringify(await r.clone().json())).toBe(200);
    return ((await r.json()) as Sel).bvllm.selection;
  };

  it('media_io_kwargs.video.fps, num_frames and max_frames change the sampling and are echoed', async () => {
    const base = await selection({});
    expect(base.sampling).toMatchObject({ mode: 'fps', fps: 1, num_frames: null, max_frames: null, frames: base.frame_timestamps_sec.length });
    const twice = await selection({ media_io_kwargs: { video: { fps: 2 } } });
    expect(twice.sampling).toMatchObject({ mode: 'fps', fps: 2 });
    expect(twice.frame_timestamps_sec.length).toBeGreaterThan(base.frame_timestamps_sec.length);
    const three = await selection({ media_io_kwargs: { video: { num_frames: 3 } } });
    expect(three.sampling).toMatchObject({ mode: 'uniform', num_frames: 3, frames: 3 });
    expect(three.frame_timestamps_sec).toHaveLength(3);
    // More frames than max_frames: that many, uniformly spaced (Qwen-VL's clamp).
    const clamped = await selection({ media_io_kwargs: { video: { fps: 2 } }, max_frames: 2 });
    expect(clamped.sampling).toMatchObject({ mode: 'uniform', num_frames: 2, max_frames: 2, frames: 2 });
    const tokens = await selection({ max_visual_tokens: 100_000 });
    expect(tokens.sampling).toMatchObject({ max_visual_tokens: 100_000, token_budget: null });
  });

  it('max_visual_tokens under the model budget lowers the token budget θ (spec §1.1 (d)) and is echoed', async () => {
    // The hand-computed table below holds for K = 4 selection queries and R = 4 spatial queries.
    expect(session.config.frameSelect).toMatchObject({ kind: 'qformer-gumbel', numQueries: 4 });
    expect(session.config.spatialSample).toMatchObject({ kind: 'qformer', numQueries: 4 });
    const base = await selection({});
    const kept = base.frames.length;
    console.log(`max_visual_tokens 8: ${kept} kept frames, ${base.visual_tokens} visual tokens by the model's budget`);
    expect(base.visual_tokens).toBe(kept * 4);
    const lowered = await selection({ max_visual_tokens: 8 });
    expect(lowered.frames).toHaveLength(kept);
    expect(lowered.sampling).toMatchObject({ max_visual_tokens: 8, token_budget: 8 });
    // θ = 8: ⌊θ/R⌋ = 2 frames' worth, N' = int(max(1, 2 / K' · 4)) ≤ R, so K' kept frames give K'·N' tokens.
    expect(lowered.visual_tokens).toBe({ 1: 4, 2: 8, 3: 6, 4: 8 }[kept]);
  });

  for (const [name, body, code, param] of [
    ['fps of the wrong type', { media_io_kwargs: { video: { fps: 'fast' } } }, 'invalid_value', 'media_io_kwargs.video.fps'],
    ['fps zero', { media_io_kwargs: { video: { fps: 0 } } }, 'invalid_value', 'media_io_kwargs.video.fps'],
    ['an unknown video kwarg', { media_io_kwargs: { video: { seconds: 3 } } }, 'invalid_value', 'media_io_kwargs.video.seconds'],
    ['fps and num_frames together', { media_io_kwargs: { video: { fps: 1, num_frames: 2 } } }, 'invalid_value', 'media_io_kwargs.video'],
    ['num_frames over the server limit', { media_io_kwargs: { video: { num_frames: 100_000 } } }, 'too_many_frames', 'media_io_kwargs.video.num_frames'],
    ['max_frames zero', { max_frames: 0 }, 'invalid_value', 'max_frames'],
    ['max_frames over the server limit', { max_frames: 100_000 }, 'too_many_frames', 'max_frames'],
    ['max_visual_tokens not an integer', { max_visual_tokens: 1.5 }, 'invalid_value', 'max_visual_tokens'],
    ['max_visual_tokens under one token per frame the model keeps', { max_visual_tokens: 1 }, 'visual_tokens_over_limit', 'max_visual_tokens'],
  ] as const)
    it(`${name}: 400 ${code}`, async () => {
      const r = await chat({ messages: video(), ...body });
      expect(r.status).toBe(400);
      expect(await errorOf(r)).toMatchObject({ type: 'invalid_request_error', code, param });
    });
});

describe('SIGTERM', () => {
  it('exits promptly with an idle keep-alive client connected', async () => {
    const { child, url: base, output } = await startProcess(['--model', inject('modelDir'), '--drain-sec', '30']);
    const agent = new Agent({ keepAlive: true, keepAliveMsecs: 60_000 });
    const { port } = new URL(base);
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/health', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end();
    });
    // The agent now holds one idle socket to the server.
    expect(Object.values(agent.freeSockets).flat()).toHaveLength(1);
    const started = performance.now();
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
    const seconds = (performance.now() - started) / 1000;
    console.log(`SIGTERM with an idle keep-alive client: exited in ${seconds.toFixed(2)} s`);
    // Exit code 0 is the orderly close; an idle socket holding it would end in the drain deadline's exit 1.
    expect(output()).toContain('stopped');
    agent.destroy();
  });
});
