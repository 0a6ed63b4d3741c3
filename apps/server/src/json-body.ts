/**
 * The JSON body parser of the API (issue #20 item 2). Fastify's parses on the event loop: for a 40 MiB upload
 * (a 55 MB body) the text decoding, `JSON.parse` and then the data: URL's base64 held `/health` for over 0.5 s.
 * Bodies over {@link OFFLOAD_BYTES} are parsed on a worker thread instead, which also decodes every content
 * part's base64 data: URL: the URL comes back as its header alone (`data:<type>;base64,`) and its bytes are kept in
 * {@link uploadedBytes}, keyed by the object that holds the URL. Smaller bodies take Fastify's own parser. Both
 * refuse `__proto__` and `constructor.prototype` keys, as Fastify does by default.
 */
import { WorkerChannel } from '@bvllm/core';
import type { FastifyInstance } from 'fastify';

/** Bodies up to this size are parsed on the event loop (well under a millisecond's work). */
export const OFFLOAD_BYTES = 1 << 20;

const WORKER_URL = new URL('../workers/json-body.mjs', import.meta.url);

/** A content part's decoded data: URL bytes, by its `image_url` / `video_url` object. */
export const uploadedBytes = new WeakMap<object, Buffer>();

interface Reply {
  id: number;
  body?: { messages: { content: Record<string, { url: string }>[] }[] };
  uploads?: { message: number; part: number; bytes: ArrayBuffer }[];
  error?: string;
}

class ParseWorker {
  private readonly channel = new WorkerChannel<{ bytes: Uint8Array }, Reply>(WORKER_URL, (reason) => new Error(`the body parser failed: ${reason}`));

  parse(bytes: Buffer): Promise<Reply> {
    // The whole buffer moves when the body owns it (a body read into one buffer does); else its bytes are copied.
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
    const view = own ? new Uint8Array(bytes.buffer) : new Uint8Array(bytes);
    return this.channel.call({ bytes: view }, [view.buffer as ArrayBuffer]).catch((error: Error) => ({ id: -1, error: error.message }));
  }

  close(): Promise<void> {
    return this.channel.close();
  }
}

/** A parse failure as Fastify reports one (status 400, a code naming JSON), so errors keep their OpenAI shape. */
const invalidJson = (message: string) => Object.assign(new Error(message), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' });
const framework = (statusCode: number, code: string, message: string) => Object.assign(new Error(message), { statusCode, code });

/**
 * The body's bytes, read as Fastify's own reader does (limit, Content-Length check, stream errors as 400s), but a
 * body that declares more than {@link OFFLOAD_BYTES} is copied chunk by chunk into one buffer of its declared size
 * as it arrives: joining 55 MB of chunks at the end held the event loop for 0.1 s.
 */
function readBody(payload: NodeJS.ReadableStream, declared: number, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (declared > limit) return reject(framework(413, 'FST_ERR_CTP_BODY_TOO_LARGE', 'Request body is too large'));
    const whole = Number.isFinite(declared) && declared > OFFLOAD_BYTES ? Buffer.allocUnsafeSlow(declared) : undefined;
    const chunks: Buffer[] = [];
    let received = 0;
    const stop = () => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onEnd);
    };
    function onData(chunk: Buffer | string) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (received + bytes.length > limit) {
        stop();
        return reject(framework(413, 'FST_ERR_CTP_BODY_TOO_LARGE', 'Request body is too large'));
      }
      if (whole && received + bytes.length > declared) {
        stop();
        return reject(framework(400, 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', 'Request body size did not match Content-Length'));
      }
      if (whole) bytes.copy(whole, received);
      else chunks.push(bytes);
      received += bytes.length;
    }
    function onEnd(error?: Error & { statusCode?: number }) {
      stop();
      if (error) return reject(Object.assign(error, { statusCode: typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 400 }));
      if (Number.isFinite(declared) && received !== declared) return reject(framework(400, 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', 'Request body size did not match Content-Length'));
      resolve(whole ?? Buffer.concat(chunks, received));
    }
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onEnd);
    payload.resume();
  });
}

/** Installs the parser for `application/json` on `app`; the worker stops when the app closes. */
export function registerJsonBody(app: FastifyInstance): void {
  const small = app.getDefaultJsonParser('error', 'error');
  const worker = new ParseWorker();
  const limit = app.initialConfig.bodyLimit ?? 1 << 20;
  app.removeContentTypeParser('application/json');
  app.addHook('onClose', async () => worker.close());
  app.addContentTypeParser('application/json', (request, payload, done) => {
    const parse = async () => {
      const bytes = await readBody(payload, Number(request.headers['content-length']), limit);
      if (bytes.length <= OFFLOAD_BYTES) {
        return new Promise<unknown>((resolve, reject) => small(request, bytes.toString('utf8'), (error, body) => (error ? reject(error) : resolve(body))));
      }
      const reply = await worker.parse(bytes);
      if (reply.error !== undefined) throw invalidJson(reply.error);
      for (const upload of reply.uploads ?? []) {
        const part = reply.body!.messages[upload.message].content[upload.part];
        uploadedBytes.set(part.image_url ?? part.video_url, Buffer.from(upload.bytes));
      }
      return reply.body;
    };
    parse().then((body) => done(null, body), (error: Error) => done(error, undefined));
  });
}
