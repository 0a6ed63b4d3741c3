/**
 * Remote media, when a server enables it: fetched into a private temp file that `release` deletes, with
 * redirects refused (a redirect is how an allowed URL reaches an internal one) and the size capped while streaming.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiError } from './api-error.js';
import { MediaSource } from './media-source.js';

let http: Server;
let base: string;
const png = () => readFileSync(join(inject('mediaRoot'), 'dot.png'));

beforeAll(async () => {
  http = createServer((request, response) => {
    if (request.url === '/dot.png') return void response.writeHead(200, { 'content-type': 'image/png' }).end(png());
    if (request.url === '/redirect') return void response.writeHead(302, { location: '/dot.png' }).end();
    // Chunked, no content-length: the cap must hold while streaming.
    if (request.url === '/huge.mp4') {
      response.writeHead(200, { 'content-type': 'video/mp4' });
      for (let i = 0; i < 20; i++) response.write(Buffer.alloc(10_000));
      return void response.end();
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())));

const source = () => new MediaSource({ maxMediaBytes: 100_000, allowRemoteMedia: true, tmpDir: mkdtempSync(join(tmpdir(), 'bvllm-media-')) });

async function refusal(url: string): Promise<ApiError> {
  const error = await source().open(url, 'url').catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ApiError);
  return error as ApiError;
}

describe('remote media (enabled)', () => {
  it('fetches the bytes into a temp file named for its type, deleted on release', async () => {
    const file = await source().open(`${base}/dot.png`, 'url');
    expect(file.path.endsWith('.png')).toBe(true);
    expect(readFileSync(file.path).equals(png())).toBe(true);
    await file.release();
    expect(existsSync(file.path)).toBe(false);
  });

  it('refuses redirects, missing files, and bodies over the cap without a content-length', async () => {
    expect(await refusal(`${base}/redirect`)).toMatchObject({ status: 400, code: 'media_not_found' });
    expect(await refusal(`${base}/nope.mp4`)).toMatchObject({ status: 400, code: 'media_not_found' });
    expect(await refusal(`${base}/huge.mp4`)).toMatchObject({ status: 413, code: 'media_too_large' });
  });
});
