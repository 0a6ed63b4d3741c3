/**
 * Live streams on the server (issue #22 item 4): `POST /v1/streams` opens one on the session's tower and returns
 * its id, `GET /v1/streams` lists them, `GET /v1/streams/ID` shows one, `DELETE /v1/streams/ID` closes it, and
 * `GET /v1/streams/ID/events` sends its status as server-sent events. A chat completion asks about a stream with
 * a `video_url` part `stream://ID` (`stream-chat.ts`).
 *
 * Sources are guarded as remote media are (`media-source.ts`): `udp://` and `rtp://` only listen, so they are
 * allowed; `rtsp://`, `http(s)://` (HLS too), `srt://` and `tcp://` connect out, so they need
 * `allowRemoteMedia`, and a loopback, link-local or private host is refused unless allow-listed — checked before
 * every (re)connect, for IP literals and for every address a name resolves to. ffmpeg then connects to the address
 * checked, not to a fresh lookup of the name (DNS rebinding): RTSP, SRT and TCP sources are opened with the host
 * replaced by that address, and every HTTP(S) request (an HLS playlist's segments and redirects too, whatever
 * host they name) goes through the server's address-checking proxy (`guarded-proxy.ts`). `file://` must be a
 * named pipe or file under the media root, read as MPEG-TS over the file protocol alone (a playlist there opens
 * nothing); stdin and devices are refused.
 */
import { randomUUID } from 'node:crypto';
import { realpath, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InferenceSession, LiveStream, LiveStreamStatus } from '@bvllm/pipeline';
import { LiveStream as Live } from '@bvllm/pipeline';
import type { FastifyInstance } from 'fastify';
import { ApiError, invalidRequest } from './api-error.js';
import { GuardedProxy } from './guarded-proxy.js';
import { RefusedAddressError, RemoteAddressPolicy } from './remote-address.js';
import type { ServerConfig } from './server-config.js';

/** What `POST /v1/streams` takes. */
export interface OpenStreamRequest {
  /** The live source URL (see the module comment for what is allowed). */
  source: string;
  /** Seconds the window keeps. Default min(600, the server's limit). */
  window_sec?: number;
  /** Frames per second of stream time. Default 1. */
  fps?: number;
  /** Coarse memory from before the window: one frame per `every_sec`, at most `max_frames`. */
  long_term?: { every_sec: number; max_frames: number };
}

export const openStreamSchema = {
  type: 'object',
  required: ['source'],
  additionalProperties: false,
  properties: {
    source: { type: 'string', minLength: 1, maxLength: 2048 },
    window_sec: { type: 'number', exclusiveMinimum: 0 },
    fps: { type: 'number', exclusiveMinimum: 0 },
    long_term: {
      type: 'object',
      required: ['every_sec', 'max_frames'],
      additionalProperties: false,
      properties: { every_sec: { type: 'number', exclusiveMinimum: 0 }, max_frames: { type: 'integer', minimum: 1, maximum: 10_000 } },
    },
  },
} as const;

interface Entry {
  id: string;
  stream: LiveStream;
  created: number;
  windowSec: number;
  fps: number;
  /** When the registry first saw it failed or ended (ms since the epoch). */
  endedAt?: number;
}

const isOver = (entry: Entry) => ['failed', 'ended', 'closed'].includes(entry.stream.status().state);

const CONNECTING = new Set(['rtsp', 'rtsps', 'http', 'https', 'srt', 'tcp']);
const LISTENING = new Set(['udp', 'rtp']);

const isInside = (root: string, path: string) => {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

/** The streams the server holds, at most `config.maxStreams`. */
export class StreamRegistry {
  private readonly streams = new Map<string, Entry>();
  private readonly addresses: RemoteAddressPolicy;
  /** Started with the first HTTP(S) stream; every request of those streams' ffmpeg goes through it. */
  private proxy?: Promise<GuardedProxy>;
  /** Ends each open `/events` response (a shutdown must not wait for them). */
  readonly eventClients = new Set<() => void>();

  /** `onRefused`: hears each host the HTTP(S) proxy refused mid-stream (a playlist's segment host, a redirect). */
  constructor(
    private readonly session: InferenceSession,
    private readonly config: ServerConfig,
    private readonly mediaRoot: string | undefined,
    private readonly onRefused: (host: string) => void = () => undefined,
  ) {
    this.addresses = new RemoteAddressPolicy(config.remoteMediaAllowedAddresses);
  }


  /** The stream `id`, or 404 `stream_not_found` naming `param`. */
  get(id: string, param: string | null = null): Entry {
    this.prune();
    const entry = this.streams.get(id);
    if (!entry) throw new ApiError(404, 'not_found_error', `No stream "${id}".`, 'stream_not_found', param);
    return entry;
  }

  list(): Entry[] {
    this.prune();
    return [...this.streams.values()];
  }

  /**
   * Removes streams that failed or ended `streamRetainEndedMs` ago (timed from when the registry first saw them
   * so), freeing what they still hold; a failed source must not keep its slot and window forever.
   */
  private prune(): void {
    const now = Date.now();
    for (const entry of this.streams.values()) {
      if (!isOver(entry)) continue;
      entry.endedAt ??= now;
      if (now - entry.endedAt < this.config.streamRetainEndedMs) continue;
      this.streams.delete(entry.id);
      void entry.stream.close();
    }
  }

  async open(request: OpenStreamRequest): Promise<Entry> {
    const { config } = this;
    // Only streams still live (or opening, or reconnecting) count against maxStreams.
    const live = this.list().filter((e) => !isOver(e)).length;
    if (live >= config.maxStreams)
      throw new ApiError(429, 'rate_limit_error', `This server holds ${live} live streams, its limit (--max-streams); close one first.`, 'too_many_streams');
    const windowSec = request.window_sec ?? Math.min(600, config.maxStreamWindowSec);
    if (windowSec > config.maxStreamWindowSec)
      throw invalidRequest(`window_sec: ${windowSec} is over this server's limit of ${config.maxStreamWindowSec} s.`, 'window_too_large', 'window_sec');
    const fps = request.fps ?? 1;
    if (fps > config.maxStreamFps) throw invalidRequest(`fps: ${fps} is over this server's limit of ${config.maxStreamFps}.`, 'fps_too_high', 'fps');
    const { source, file } = await this.checkSource(request.source);
    const http = /^https?:\/\//i.test(source);
    const httpProxy = http ? (await (this.proxy ??= GuardedProxy.start(this.addresses, this.onRefused))).url : undefined;
    const id = `stream-${randomUUID()}`;
    const stream = Live.open(this.session, source, {
      windowSec,
      fps,
      longTerm: request.long_term && { everySec: request.long_term.every_sec, maxFrames: request.long_term.max_frames },
      cpuShare: config.streamCpuShare,
      openTimeoutMs: config.streamOpenTimeoutMs,
      stallTimeoutMs: config.streamStallTimeoutMs,
      checkSource: (url) => this.checkHost(url),
      ...(httpProxy && { httpProxy }),
      // A pipe or file under the media root is MPEG-TS, read as such: a playlist there must not make ffmpeg open
      // the files it names.
      ...(file && { format: 'mpegts', protocols: ['file'] }),
    });
    const entry = { id, stream, created: Math.floor(Date.now() / 1000), windowSec, fps };
    this.streams.set(id, entry);
    return entry;
  }

  async close(id: string): Promise<void> {
    const entry = this.get(id);
    this.streams.delete(id);
    await entry.stream.close();
  }

  /** Ends every `/events` response, so a draining server is not held open by them. */
  endEvents(): void {
    for (const end of [...this.eventClients]) end();
  }

  async closeAll(): Promise<void> {
    const all = [...this.streams.values()];
    this.streams.clear();
    await Promise.all(all.map((e) => e.stream.close()));
    await (await this.proxy)?.close();
  }

  /** The source as ffmpeg will open it (and whether it is a media-root file), or an ApiError on `source`. */
  private async checkSource(source: string): Promise<{ source: string; file?: boolean }> {
    const param = 'source';
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(source)?.[1]?.toLowerCase();
    if (scheme && LISTENING.has(scheme)) return { source };
    if (scheme && CONNECTING.has(scheme)) {
      if (!this.config.allowRemoteMedia)
        throw new ApiError(403, 'permission_error', `${param}: remote stream sources are disabled on this server (--allow-remote-media).`, 'remote_media_disabled', param);
      let url: URL;
      try {
        url = new URL(source);
      } catch {
        throw invalidRequest(`${param}: not a valid URL.`, 'invalid_url', param);
      }
      await this.checkHost(url);
      return { source };
    }
    if (scheme === 'file') {
      const root = this.mediaRoot;
      if (!root) throw new ApiError(403, 'permission_error', `${param}: file:// sources are disabled (the server has no media root).`, 'media_root_disabled', param);
      let real: string;
      try {
        const lexical = resolve(fileURLToPath(source));
        if (!isInside(root, lexical)) throw new ApiError(403, 'permission_error', `${param}: the path is outside the media root.`, 'media_outside_root', param);
        real = await realpath(lexical);
      } catch (error) {
        if (error instanceof ApiError) throw error;
        throw invalidRequest(`${param}: no such pipe or file under the media root.`, 'media_not_found', param);
      }
      if (!isInside(root, real)) throw new ApiError(403, 'permission_error', `${param}: the path is outside the media root.`, 'media_outside_root', param);
      const info = await stat(real);
      if (!info.isFIFO() && !info.isFile()) throw invalidRequest(`${param}: not a named pipe or a regular file.`, 'invalid_media', param);
      return { source: real, file: true };
    }
    throw invalidRequest(`${param}: a stream source is udp://, rtp://, rtsp(s)://, http(s)://, srt://, tcp:// or a file:// named pipe under the media root.`, 'invalid_url', param);
  }

  /**
   * Refuses a host that is, or resolves to, a loopback, link-local or private address not allow-listed. For a
   * name on a non-HTTP scheme, returns the URL with the host replaced by the address checked, for ffmpeg to open
   * (HTTP keeps its name, for the Host header and TLS; the proxy checks and pins each of its requests).
   */
  private async checkHost(url: URL): Promise<URL | undefined> {
    const forbidden = () =>
      new ApiError(403, 'permission_error', "source: the stream's host is a loopback, link-local or private address; this server does not connect to those.", 'remote_media_forbidden_address', 'source');
    const scheme = url.protocol.replace(/:$/, '');
    if (!CONNECTING.has(scheme)) return undefined;
    const address = await this.addresses.resolve(url.hostname).catch((error: Error) => {
      throw error instanceof RefusedAddressError ? forbidden() : invalidRequest('source: the host does not resolve.', 'invalid_url', 'source');
    });
    if (isIP(url.hostname.replace(/^\[(.*)\]$/, '$1')) || scheme === 'http' || scheme === 'https') return undefined;
    const pinned = new URL(url.href);
    pinned.hostname = isIP(address) === 6 ? `[${address}]` : address;
    return pinned;
  }
}

/** A stream as the API shows it. */
export function streamObject(entry: Entry): Record<string, unknown> {
  return { id: entry.id, object: 'stream', created: entry.created, source: entry.stream.url, window_sec: entry.windowSec, fps: entry.fps, status: statusObject(entry.stream.status()) };
}

export function statusObject(status: LiveStreamStatus): Record<string, unknown> {
  const error = status.error as (Error & { code?: string; reason?: string }) | undefined;
  return {
    state: status.state,
    frames_seen: status.framesSeen,
    frames_encoded: status.framesEncoded,
    frames_dropped: status.framesDropped,
    connections: status.connections,
    gaps: status.gaps.map((g) => ({ from_sec: g.fromSec, to_sec: g.toSec })),
    window: { frames: status.window.frames, from_sec: status.window.fromSec ?? null, to_sec: status.window.toSec ?? null, long_term_frames: status.window.longTermFrames },
    encode_ms_per_frame: status.encodeMsPerFrame,
    // The reason alone: the message may quote ffmpeg's stderr.
    error: error ? { code: error.code ?? 'internal_error', message: error.reason ?? 'the stream failed' } : null,
  };
}

/** The `/v1/streams` routes. */
export function registerStreamRoutes(app: FastifyInstance, streams: StreamRegistry): void {
  app.post<{ Body: OpenStreamRequest }>('/v1/streams', { schema: { body: openStreamSchema } }, async (request, reply) => {
    const entry = await streams.open(request.body);
    return reply.code(201).send(streamObject(entry));
  });
  app.get('/v1/streams', () => ({ object: 'list', data: streams.list().map(streamObject) }));
  app.get<{ Params: { id: string } }>('/v1/streams/:id', (request) => streamObject(streams.get(request.params.id)));
  app.delete<{ Params: { id: string } }>('/v1/streams/:id', async (request) => {
    await streams.close(request.params.id);
    return { id: request.params.id, object: 'stream.deleted', deleted: true };
  });
  app.get<{ Params: { id: string }; Querystring: { interval_ms?: string } }>('/v1/streams/:id/events', (request, reply) => {
    const entry = streams.get(request.params.id);
    const interval = Math.min(60_000, Math.max(100, Number(request.query.interval_ms ?? 1000) || 1000));
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const send = () => {
      const status = entry.stream.status();
      raw.write(`data: ${JSON.stringify({ id: entry.id, object: 'stream.status', ...statusObject(status) })}\n\n`);
      // A closed stream has nothing more to report.
      if (status.state === 'closed') stop();
    };
    const timer = setInterval(send, interval);
    const stop = () => {
      clearInterval(timer);
      streams.eventClients.delete(stop);
      if (!raw.destroyed) raw.end();
    };
    streams.eventClients.add(stop);
    raw.on('close', stop);
    send();
  });
}
