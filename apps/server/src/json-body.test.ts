import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OFFLOAD_BYTES, registerJsonBody, uploadedBytes } from './json-body.js';

const app = Fastify({ bodyLimit: 64 << 20 });
let seen: { body: unknown; bytes: (Buffer | undefined)[] };

beforeAll(async () => {
  registerJsonBody(app);
  app.post('/echo', async (request) => {
    const body = request.body as { messages?: { content?: Record<string, { url: string }>[] }[] };
    const parts = body.messages?.flatMap((m) => (Array.isArray(m.content) ? m.content : [])) ?? [];
    seen = { body, bytes: parts.map((p) => uploadedBytes.get(p.video_url ?? p.image_url ?? {})) };
    return { ok: true };
  });
  await app.ready();
});
afterAll(() => app.close());

const post = (payload: string) => app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload });

/** Deterministic bytes whose base64 has every alphabet character. */
const media = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 131 + (i >> 8)) & 255));

describe('the JSON body parser', () => {
  it('a large body is parsed off the event loop: the same body, each data: URL as its header plus its decoded bytes', async () => {
    const video = media(3 * OFFLOAD_BYTES);
    const image = media(1000);
    const body = {
      model: 'm',
      messages: [
        { role: 'system', content: 'be brief' },
        {
          role: 'user',
          content: [
            { type: 'video_url', video_url: { url: `data:video/mp4;base64,${video.toString('base64')}` } },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${image.toString('base64')}` } },
            { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
            { type: 'text', text: 'What is shown?' },
          ],
        },
      ],
    };
    const response = await post(JSON.stringify(body));
    expect(response.statusCode).toBe(200);
    const expected = structuredClone(body);
    (expected.messages[1].content as { video_url?: { url: string }; image_url?: { url: string } }[])[0].video_url!.url = 'data:video/mp4;base64,';
    (expected.messages[1].content as { video_url?: { url: string }; image_url?: { url: string } }[])[1].image_url!.url = 'data:image/png;base64,';
    expect(seen.body).toEqual(expected);
    expect(seen.bytes[0]!.equals(video)).toBe(true);
    expect(seen.bytes[1]!.equals(image)).toBe(true);
    expect(seen.bytes.slice(2)).toEqual([undefined, undefined]);
  });

  it('a small body takes Fastify’s parser, its data: URL untouched', async () => {
    const url = `data:image/png;base64,${media(30).toString('base64')}`;
    expect((await post(JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }] }))).statusCode).toBe(200);
    expect(seen.body).toMatchObject({ messages: [{ content: [{ image_url: { url } }] }] });
    expect(seen.bytes).toEqual([undefined]);
  });

  for (const [name, text] of [
    ['malformed JSON', `{"pad": "${'x'.repeat(OFFLOAD_BYTES)}", "messages": [`],
    ['a __proto__ key', `{"pad": "${'x'.repeat(OFFLOAD_BYTES)}", "__proto__": {"admin": true}}`],
    ['constructor.prototype', `{"pad": "${'x'.repeat(OFFLOAD_BYTES)}", "constructor": {"prototype": {"admin": true}}}`],
  ])
    it(`a large body with ${name} is a 400 with a JSON code, as a small one is`, async () => {
      const large = await post(text);
      const small = await post(text.replace('x'.repeat(OFFLOAD_BYTES), 'x'));
      expect(large.statusCode).toBe(400);
      expect(small.statusCode).toBe(400);
      expect(large.json().code).toContain('JSON');
      expect((({}) as Record<string, unknown>).admin).toBeUndefined();
    });
});
