/**
 * Live streams on the server (issue #22 item 4): open, list, events, ask (streamed and not), close, limits and bad
 * input, on loopback sources only: UDP MPEG-TS from ffmpeg, HTTP chunked MPEG-TS served by the test, a named pipe.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { initBackend } from '@bvllm/core';
import { defaultModelDir } from '@bvllm/bvllm-tiny';
import { InferenceSession } from '@bvllm/pipeline';
import { ffmpegPath } from '@bvllm/vision-encoder';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { freeUdpPort } from '../../../test/live/loopback.js';
import { createServer, type BvllmServer } from './build-server.js';
import type { ServerConfigInput } from './server-config.js';

const SOURCE = ['-f', 'lavfi', '-i', 'testsrc=s=64x64:r=10'];
let session: InferenceSession;
const servers: BvllmServer[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  await initBackend();
  session = await InferenceSession.open(defaultModelDir());
});
afterEach(async () => {
  children.splice(0).forEach((c) => c.kill('SIGKILL'));
  for (const s of servers.splice(0)) await s.close();
});
afterAll(() => session?.close());

async function serve(config: ServerConfigInput = {}): Promise<string> {
  const server = createServer(session, { port: 0, ...config });
  servers.push(server);
  return server.listen();
}

function udpSender(port: number, seconds = 40): void {
  children.push(spawn(ffmpegPath(), ['-loglevel', 'error', '-re', ...SOURCE, '-t', String(seconds), '-f', 'mpegts', `udp://127.0.0.1:${port}?pkt_size=1316`], { stdio: 'ignore' }));
}

const post = (base: string, path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const json = async (r: Response) => (await r.json()) as Record<string, any>;

/** The `data:` payloads of a server-sent event response, until `count` arrive or the stream ends. */
async function sse(response: Response, count = Infinity): Promise<any[]> {
  const out: any[] = [];
  const reader = response.body!.getReader();
  let buffer = '';
  while (out.length < count) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += new TextDecoder().decode(value);
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0 && out.length < count) {
      const data = buffer.slice(0, cut).replace(/^data: /, '');
      buffer = buffer.slice(cut + 2);
      out.push(data === '[DONE]' ? data : JSON.parse(data));
    }
  }
  await reader.cancel().catch(() => undefined);
  return out;
}

const ask = (base: string, id: string, extra: Record<string, unknown> = {}) =>
  post(base, '/v1/chat/completions', {
    model: session.config.name,
    max_tokens: 4,
    messages: [{ role: 'user', content: [{ type: 'video_url', video_url: { url: `stream://${id}` } }, { type: 'text', text: 'What is on screen now?' }] }],
    ...extra,
  });

async function waitFrames(base: string, id: string, frames: number): Promise<Record<string, any>> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    const stream = await json(await fetch(`${base}/v1/streams/${id}`));
    if (stream.status.window.frames >= frames) return stream;
  }
  throw new Error(`stream ${id} never reached ${frames} frames`);
}

describe('/v1/streams', () => {
  it('opens a UDP stream, lists it, reports events, answers about it (streamed and not), and closes it', async () => {
    const base = await serve();
    const port = await freeUdpPort();
    const opened = await post(base, '/v1/streams', { source: `udp://127.0.0.1:${port}`, window_sec: 5 });
    expect(opened.status).toBe(201);
    const stream = await json(opened);
    expect(stream).toMatchObject({ object: 'stream', source: `udp://127.0.0.1:${port}`, window_sec: 5, fps: 1, status: { state: 'opening', frames_seen: 0 } });
    udpSender(port);
    const list = await json(await fetch(`${base}/v1/streams`));
    expect(list.data.map((s: { id: string }) => s.id)).toEqual([stream.id]);
    // Events: periodic status while frames arrive.
    const events = await sse(await fetch(`${base}/v1/streams/${stream.id}/events?interval_ms=300`), 1);
    expect(events[0]).toMatchObject({ id: stream.id, object: 'stream.status' });
    await waitFrames(base, stream.id, 5);
    const later = await sse(await fetch(`${base}/v1/streams/${stream.id}/events?interval_ms=700`), 4);
    expect(later.at(-1).frames_seen).toBeGreaterThan(later[0].frames_seen);
    expect(later.at(-1)).toMatchObject({ state: 'live', frames_dropped: 0, window: { frames: 5 } });
    expect(later.at(-1).window.to_sec - later.at(-1).window.from_sec).toBe(4);
    // Asked streamed: the usual chunks, the last one citing frames of the window the question saw.
    const chunks = await sse(await ask(base, stream.id, { stream: true }));
    expect(chunks.at(-1)).toBe('[DONE]');
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    const final = chunks.at(-2);
    expect(final.choices[0].finish_reason).toMatch(/stop|length/);
    const { window, cited_sec: cited } = final.bvllm.stream;
    expect(window.frames).toBe(5);
    expect(cited.length).toBeGreaterThan(0);
    for (const t of cited) expect(t >= window.from_sec && t <= window.to_sec).toBe(true);
    expect(final.bvllm.selection.frames.map((f: { timestamp_sec: number }) => f.timestamp_sec)).toEqual(cited);
    // And as one JSON body.
    const plain = await json(await ask(base, stream.id, { seed: 3 }));
    expect(plain.object).toBe('chat.completion');
    expect(typeof plain.choices[0].message.content).toBe('string');
    expect(plain.bvllm.stream.id).toBe(stream.id);
    // Close: gone from the list, its id unknown, the events of a closed stream end.
    const deleted = await fetch(`${base}/v1/streams/${stream.id}`, { method: 'DELETE' });
    expect(await json(deleted)).toEqual({ id: stream.id, object: 'stream.deleted', deleted: true });
    expect((await json(await fetch(`${base}/v1/streams`))).data).toEqual([]);
    const gone = await ask(base, stream.id);
    expect(gone.status).toBe(404);
    expect((await json(gone)).error).toMatchObject({ type: 'not_found_error', code: 'stream_not_found', param: 'messages[0].content[0].video_url.url' });
    expect((await fetch(`${base}/v1/streams/${stream.id}/events`)).status).toBe(404);
  }, 60_000);

  it('reads HTTP chunked MPEG-TS from an allow-listed loopback host, and a named pipe under the media root', async () => {
    const http: Server = createHttpServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'video/mp2t' });
      const child = spawn(ffmpegPath(), ['-loglevel', 'error', '-re', ...SOURCE, '-t', '30', '-f', 'mpegts', 'pipe:1'], { stdio: ['ignore', 'pipe', 'ignore'] });
      children.push(child);
      child.stdout.pipe(response);
      response.on('close', () => child.kill('SIGKILL'));
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const fifo = join(inject('mediaRoot'), `live-${process.pid}.ts`);
    try {
      const base = await serve({ allowRemoteMedia: true, remoteMediaAllowedAddresses: ['127.0.0.1'], mediaRoot: inject('mediaRoot') });
      const { port } = http.address() as { port: number };
      const overHttp = await json(await post(base, '/v1/streams', { source: `http://127.0.0.1:${port}/live.ts`, window_sec: 3 }));
      execFileSync('mkfifo', [fifo]);
      const overPipe = await json(await post(base, '/v1/streams', { source: pathToFileURL(fifo).href, window_sec: 3 }));
      children.push(spawn(ffmpegPath(), ['-loglevel', 'error', '-y', '-re', ...SOURCE, '-t', '30', '-f', 'mpegts', fifo], { stdio: 'ignore' }));
      for (const s of [overHttp, overPipe]) expect((await waitFrames(base, s.id, 2)).status).toMatchObject({ state: 'live', connections: 1 });
    } finally {
      http.closeAllConnections();
      http.close();
      rmSync(fifo, { force: true });
    }
  }, 60_000);

  it('reads a live HLS playlist through the address-checking proxy; a segment on a refused host is never fetched', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bvllm-hls-'));
    const fetched: string[] = [];
    const files = (host: string): Server =>
      createHttpServer((request, response) => {
        fetched.push(`${host}${request.url}`);
        let body: Buffer;
        try {
          body = readFileSync(join(dir, new URL(request.url!, 'http://x').pathname.slice(1)));
        } catch {
          return void response.writeHead(404).end();
        }
        response.writeHead(200).end(body);
      });
    const allowed = files('127.0.0.1');
    const refused = files('127.0.0.2');
    await new Promise<void>((resolve) => allowed.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => refused.listen(0, '127.0.0.2', resolve));
    const port = (server: Server) => (server.address() as { port: number }).port;
    try {
      // A live playlist as a camera's HLS packager writes it: 1 s segments (a keyframe each second), the last 6 listed.
      children.push(spawn(ffmpegPath(), ['-loglevel', 'error', '-re', ...SOURCE, '-t', '40', '-g', '10', '-f', 'hls', '-hls_time', '1', '-hls_list_size', '6', join(dir, 'live.m3u8')], { stdio: 'ignore' }));
      for (const deadline = Date.now() + 15_000; !existsSync(join(dir, 'live.m3u8')) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
      // A hostile playlist on the allowed host: its segment names a host the server must not reach.
      writeFileSync(join(dir, 'evil.m3u8'), `#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.2:${port(refused)}/live0.ts\n#EXTINF:1,\nhttp://127.0.0.2:${port(refused)}/live1.ts\n`);
      const base = await serve({ allowRemoteMedia: true, remoteMediaAllowedAddresses: ['127.0.0.1'], streamOpenTimeoutMs: 3000 });
      const good = await json(await post(base, '/v1/streams', { source: `http://127.0.0.1:${port(allowed)}/live.m3u8`, window_sec: 5 }));
      const evil = await json(await post(base, '/v1/streams', { source: `http://127.0.0.1:${port(allowed)}/evil.m3u8`, window_sec: 5 }));
      expect((await waitFrames(base, good.id, 2)).status).toMatchObject({ state: 'live' });
      expect(fetched.some((f) => /^127\.0\.0\.1\/live\d+\.ts$/.test(f))).toBe(true);
      const status = (await json(await fetch(`${base}/v1/streams/${evil.id}`))).status;
      expect(status.frames_seen).toBe(0);
      expect(fetched.filter((f) => f.startsWith('127.0.0.2'))).toEqual([]);
    } finally {
      for (const server of [allowed, refused]) {
        server.closeAllConnections();
        server.close();
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('enforces the limits: streams, window, fps; OpenAI-shaped refusals', async () => {
    const base = await serve({ maxStreams: 1, maxStreamWindowSec: 60, maxStreamFps: 2 });
    const port = await freeUdpPort();
    expect((await post(base, '/v1/streams', { source: `udp://127.0.0.1:${port}` })).status).toBe(201);
    const refused = await post(base, '/v1/streams', { source: `udp://127.0.0.1:${port + 1}` });
    expect(refused.status).toBe(429);
    expect((await json(refused)).error).toMatchObject({ type: 'rate_limit_error', code: 'too_many_streams' });
    const base2 = await serve({ maxStreamWindowSec: 60, maxStreamFps: 2 });
    const window = await post(base2, '/v1/streams', { source: `udp://127.0.0.1:${port}`, window_sec: 61 });
    expect(window.status).toBe(400);
    expect((await json(window)).error).toMatchObject({ type: 'invalid_request_error', code: 'window_too_large', param: 'window_sec' });
    const fps = await post(base2, '/v1/streams', { source: `udp://127.0.0.1:${port}`, fps: 3 });
    expect((await json(fps)).error).toMatchObject({ code: 'fps_too_high', param: 'fps' });
  });

  it('refuses bad input and unguarded sources', async () => {
    const base = await serve();
    const cases: [unknown, number, string][] = [
      [{}, 400, 'invalid_value'],
      [{ source: 'udp://127.0.0.1:1', extra: 1 }, 400, 'invalid_value'],
      [{ source: '-' }, 400, 'invalid_url'],
      [{ source: '/dev/video0' }, 400, 'invalid_url'],
      [{ source: 'ftp://example.com/x' }, 400, 'invalid_url'],
      [{ source: 'http://127.0.0.1:9/x.ts' }, 403, 'remote_media_disabled'],
      [{ source: 'file:///etc/passwd' }, 403, 'media_root_disabled'],
      [{ source: 'udp://127.0.0.1:1', window_sec: -1 }, 400, 'invalid_value'],
    ];
    for (const [body, status, code] of cases) {
      const response = await post(base, '/v1/streams', body);
      expect([JSON.stringify(body), response.status]).toEqual([JSON.stringify(body), status]);
      expect((await json(response)).error.code).toBe(code);
    }
    const guarded = await serve({ allowRemoteMedia: true, mediaRoot: inject('mediaRoot') });
    const loopback = await post(guarded, '/v1/streams', { source: 'rtsp://127.0.0.1:8554/cam' });
    expect(loopback.status).toBe(403);
    expect((await json(loopback)).error.code).toBe('remote_media_forbidden_address');
    const outside = await post(guarded, '/v1/streams', { source: pathToFileURL(inject('scratch')).href });
    expect((await json(outside)).error.code).toBe('media_outside_root');
    const unknown = await fetch(`${guarded}/v1/streams/nope`, { method: 'DELETE' });
    expect(unknown.status).toBe(404);
    expect((await json(unknown)).error.code).toBe('stream_not_found');
  });

  it('a playlist under the media root is read as MPEG-TS, so it opens none of the files it names', async () => {
    const playlist = join(inject('mediaRoot'), `list-${process.pid}.m3u8`);
    writeFileSync(playlist, `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n${pathToFileURL(join(inject('mediaRoot'), 'clip.mp4')).href}\n#EXT-X-ENDLIST\n`);
    try {
      const base = await serve({ mediaRoot: inject('mediaRoot'), streamOpenTimeoutMs: 2000 });
      const stream = await json(await post(base, '/v1/streams', { source: pathToFileURL(playlist).href }));
      const answer = await ask(base, stream.id);
      expect((await json(answer)).error.code).toBe('stream_unavailable');
      expect((await json(await fetch(`${base}/v1/streams/${stream.id}`))).status).toMatchObject({ state: 'failed', frames_seen: 0 });
    } finally {
      rmSync(playlist, { force: true });
    }
  }, 30_000);

  it('a stream that never opens fails typed: its status says why, a question about it gets 400, and it gives up its slot', async () => {
    const base = await serve({ streamOpenTimeoutMs: 300, maxStreams: 1, streamRetainEndedMs: 2000 });
    const port = await freeUdpPort();
    const stream = await json(await post(base, '/v1/streams', { source: `udp://127.0.0.1:${port}` }));
    const answer = await ask(base, stream.id);
    expect(answer.status).toBe(400);
    expect((await json(answer)).error).toMatchObject({ code: 'stream_unavailable' });
    const status = (await json(await fetch(`${base}/v1/streams/${stream.id}`))).status;
    expect(status).toMatchObject({ state: 'failed', error: { code: 'STREAM_OPEN' } });
    // The failed stream no longer counts against --max-streams 1: a new one opens beside it.
    const next = await post(base, '/v1/streams', { source: `udp://127.0.0.1:${await freeUdpPort()}` });
    expect(next.status).toBe(201);
    const nextId = (await json(next)).id;
    const listed = async () => (await json(await fetch(`${base}/v1/streams`))).data.map((s: { id: string }) => s.id);
    expect(await listed()).toEqual([stream.id, nextId]);
    // Listed (with its reason) for streamRetainEndedMs, then gone.
    await new Promise((r) => setTimeout(r, 2100));
    expect(await listed()).toEqual([nextId]);
    expect((await fetch(`${base}/v1/streams/${stream.id}`)).status).toBe(404);
  }, 30_000);
});
