/**
 * The HTTP surface: routes, error shape, limits and lifecycle. Model work happens in `chat-completion.ts`; this
 * file wires a request's AbortSignal (client gone, timeout, shutdown) and turns every failure into an OpenAI
 * error body, so no request can crash the process.
 */
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortedError } from '@bvllm/core';
import type { InferenceSession } from '@bvllm/pipeline';
import Fastify, { type FastifyInstance } from 'fastify';
import { Admission, type Ticket } from './admission.js';
import { ApiError, toApiError } from './api-error.js';
import { chatCompletion } from './chat-completion.js';
import { chatRequestSchema, type ChatRequest } from './chat-request.js';
import { clientErrorHandler } from './client-error.js';
import { FeatureCacheLru } from './feature-cache-lru.js';
import { GenerationQueue } from './generation-queue.js';
import { registerJsonBody } from './json-body.js';
import { MediaSource } from './media-source.js';
import { Metrics } from './metrics.js';
import { RequestGuard } from './request-guard.js';
import { serverConfigSchema, type ServerConfig, type ServerConfigInput } from './server-config.js';
import { asksAboutStream, streamChatCompletion } from './stream-chat.js';
import { StreamRegistry, registerStreamRoutes } from './streams.js';

export interface BvllmServer {
  app: FastifyInstance;
  config: ServerConfig;
  metrics: Metrics;
  /** Starts listening; resolves to the base URL (`http://127.0.0.1:PORT`). */
  listen(): Promise<string>;
  /**
   * Stops taking requests, lets in-flight ones finish (aborting them after `config.shutdownGraceMs`), then
   * frees the temp folders. The session stays the caller's to close.
   */
  close(): Promise<void>;
}

export interface CreateServerOptions {
  /** Fastify's logger: false (default) or true for JSON lines on stdout. */
  logger?: boolean;
}

const page = readFileSync(new URL('../public/index.html', import.meta.url), 'utf8');

const CHAT_ROUTE = '/v1/chat/completions';

/**
 * The frame limit when `--max-frames` is not given: twice the duration limit times the model's sampling rate, so
 * every video the duration limit admits passes (see `serverConfigSchema.maxFrames`).
 */
export function defaultMaxFrames(maxDurationSec: number, samplesPerSec: number): number {
  return Math.ceil(2 * maxDurationSec * samplesPerSec);
}

/** The server over one inference session (CLI, server and eval all answer through `InferenceSession`). */
export function createServer(session: InferenceSession, configInput: ServerConfigInput, options: CreateServerOptions = {}): BvllmServer {
  const config = serverConfigSchema.parse(configInput);
  const work = mkdtempSync(join(tmpdir(), 'bvllm-server-'));
  const uploads = join(work, 'uploads');
  mkdirSync(uploads);
  const queue = new GenerationQueue(config.maxQueue);
  const admission = new Admission(config.maxQueue + 1, config.maxInflightBodyBytes ?? 2 * config.bodyLimitBytes, () => queue.retryAfterSec());
  const guard = new RequestGuard({ bindHost: config.host, allowedHosts: config.allowedHosts, apiKey: config.apiKey });
  const samplesPerSec = (session.config.vision.sampling as { samplesPerSec?: number } | undefined)?.samplesPerSec ?? 1;
  const featureCacheDir = config.cacheDir ?? join(work, 'features');
  const streams = new StreamRegistry(session, config, config.mediaRoot === undefined ? undefined : realpathSync(config.mediaRoot), (host) =>
    app.log.warn({ host }, 'a live stream request was refused: its host is a loopback, link-local or private address'),
  );
  let closing = false;
  const inflight = new Set<AbortController>();
  const metrics = new Metrics(() => ({
    bvllm_queue_waiting: { help: 'Generations waiting for the generation slot.', value: queue.depth },
    bvllm_generation_running: { help: '1 while a generation holds the slot.', value: queue.running ? 1 : 0 },
    bvllm_requests_in_flight: { help: 'Chat requests being handled.', value: inflight.size },
    bvllm_requests_admitted: { help: 'Chat requests holding an admission ticket (headers received, not yet answered).', value: admission.inUse.slots },
    bvllm_request_body_bytes_admitted: { help: 'Declared body bytes of admitted chat requests.', value: admission.inUse.bytes },
  }));
  const deps = {
    session,
    config,
    queue,
    metrics,
    featureCacheDir,
    featureCacheLru: new FeatureCacheLru(featureCacheDir, config.featureCacheBytes),
    maxFrames: config.maxFrames ?? defaultMaxFrames(config.maxDurationSec, samplesPerSec),
    media: new MediaSource({
      mediaRoot: config.mediaRoot === undefined ? undefined : realpathSync(config.mediaRoot),
      maxMediaBytes: config.maxMediaBytes,
      allowRemoteMedia: config.allowRemoteMedia,
      remoteMediaAllowedAddresses: config.remoteMediaAllowedAddresses,
      tmpDir: uploads,
    }),
  };

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: config.bodyLimitBytes,
    // Node's own limit on receiving a whole request (slow-loris uploads).
    requestTimeout: config.requestTimeoutMs,
    // Refused in the onRequest hook below, in the OpenAI shape.
    return503OnClosing: false,
    // close() ends keep-alive connections that carry no request at once, instead of waiting for their timeout.
    forceCloseConnections: 'idle',
    clientErrorHandler,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, discriminator: true, allowUnionTypes: true } },
  });

  app.server.maxConnections = config.maxConnections;

  // Before routing and before any body byte is read: shutdown, Host, API key, then admission of chat requests.
  app.addHook('onRequest', (request, reply, done) => {
    try {
      if (closing) {
        void reply.header('connection', 'close');
        throw new ApiError(503, 'server_error', 'The server is shutting down.', 'server_shutting_down');
      }
      guard.checkHost(request.headers.host);
      if (request.url.startsWith('/v1/')) guard.checkKey(request.headers.authorization);
      if (request.method === 'POST' && request.url.split('?')[0] === CHAT_ROUTE) {
        const declared = Number(request.headers['content-length'] ?? Number.NaN);
        if (declared > config.bodyLimitBytes)
          throw new ApiError(413, 'invalid_request_error', `The request body is ${declared} bytes, over the limit of ${config.bodyLimitBytes} bytes.`, 'request_too_large');
        const ticket: Ticket = admission.acquire(Number.isFinite(declared) ? declared : config.bodyLimitBytes);
        // 'close' fires once the response is done or the connection is gone, whichever way the request ends.
        reply.raw.once('close', () => ticket.release());
      }
      done();
    } catch (error) {
      done(error as Error);
    }
  });

  // The API speaks JSON only; anything else is a 415, not a string body that fails validation.
  app.removeContentTypeParser('text/plain');
  registerJsonBody(app);
  app.setErrorHandler((error, _request, reply) => {
    const api = toApiError(error);
    if (api.status >= 500) app.log.error({ err: error }, 'request failed');
    if (api.code === 'queue_full') metrics.rejected.add(1);
    void reply.code(api.status).headers(api.headers).send(api.body());
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(new ApiError(404, 'not_found_error', `No route ${request.method} ${request.url.split('?')[0]}.`, 'route_not_found').body());
  });
  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpRequests.add(1, { route: request.routeOptions.url ?? 'unknown', status: String(reply.statusCode) });
    done();
  });

  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get('/health', () => ({ status: 'ok', model: session.config.name, queue: { waiting: queue.depth, running: queue.running } }));
  app.get('/metrics', (_request, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.render()));
  app.get('/v1/models', () => ({ object: 'list', data: [{ id: session.config.name, object: 'model', created: 0, owned_by: 'bvllm' }] }));

  registerStreamRoutes(app, streams);

  app.post<{ Body: ChatRequest }>('/v1/chat/completions', { schema: { body: chatRequestSchema(config.maxTokens) } }, async (request, reply) => {
    const receivedAt = performance.now();
    const controller = new AbortController();
    inflight.add(controller);
    const timer = setTimeout(
      () => controller.abort(new ApiError(504, 'timeout_error', `The request took longer than ${config.requestTimeoutMs} ms.`, 'generation_timeout')),
      config.requestTimeoutMs,
    );
    // 'close' also fires after a normal finish; only a response cut short means the client went away.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) controller.abort(new AbortedError('the request (client disconnected)'));
    });
    try {
      await (asksAboutStream(request.body) ? streamChatCompletion(deps, streams, request.body, reply, controller.signal, receivedAt) : chatCompletion(deps, request.body, reply, controller.signal, receivedAt));
    } finally {
      clearTimeout(timer);
      inflight.delete(controller);
    }
    return reply;
  });

  return {
    app,
    config,
    metrics,
    async listen() {
      return app.listen({ host: config.host, port: config.port });
    },
    async close() {
      closing = true;
      // Past the grace period in-flight requests are aborted and every connection still open is cut.
      const deadline = setTimeout(() => {
        for (const c of inflight) c.abort(new ApiError(503, 'server_error', 'The server is shutting down.', 'server_shutting_down'));
        setTimeout(() => app.server.closeAllConnections(), 1000).unref();
      }, config.shutdownGraceMs);
      try {
        streams.endEvents();
        await app.close();
        await streams.closeAll();
      } finally {
        clearTimeout(deadline);
        metrics.close();
        rmSync(work, { recursive: true, force: true });
      }
    },
  };
}
