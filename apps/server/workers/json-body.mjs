// Parses large JSON request bodies off the event loop, for `json-body.ts`: decoding, JSON.parse and the base64 of
// data: URLs cost about 10 ms per MiB, and a 40 MiB upload held the loop for over 0.5 s. Plain JavaScript so that
// it loads as is from the package's source (under vitest) and from its build.
import { parentPort } from 'node:worker_threads';

const DATA_URL = /^data:([^,;]*)((?:;[^,;]*)*),/;

// Fastify's defaults (secure-json-parse): a `__proto__` key, or `constructor.prototype`, is refused.
function reviver(key, value) {
  if (key === '__proto__') throw new SyntaxError('Object contains forbidden prototype property');
  if (key === 'constructor' && value && typeof value === 'object' && Object.hasOwn(value, 'prototype')) throw new SyntaxError('Object contains forbidden prototype property');
  return value;
}

/** Each content part's base64 data: URL is decoded here; the URL keeps only its header (`data:<type>;base64,`). */
function extractUploads(body) {
  const uploads = [];
  const messages = body && typeof body === 'object' && Array.isArray(body.messages) ? body.messages : [];
  messages.forEach((message, m) => {
    if (!message || !Array.isArray(message.content)) return;
    message.content.forEach((part, p) => {
      const holder = part && typeof part === 'object' ? (part.image_url ?? part.video_url) : undefined;
      const url = holder && typeof holder === 'object' ? holder.url : undefined;
      if (typeof url !== 'string') return;
      const header = DATA_URL.exec(url);
      if (!header || !header[2].split(';').includes('base64')) return;
      const bytes = Buffer.from(url.slice(header[0].length), 'base64');
      holder.url = header[0];
      // A Buffer this large owns its memory (it is not a slice of the pool), so its buffer can move.
      const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      uploads.push({ message: m, part: p, bytes: own });
    });
  });
  return uploads;
}

parentPort.on('message', ({ id, bytes }) => {
  try {
    const body = JSON.parse(new TextDecoder().decode(bytes), reviver);
    const uploads = extractUploads(body);
    parentPort.postMessage({ id, body, uploads }, uploads.map((u) => u.bytes));
  } catch (error) {
    parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
