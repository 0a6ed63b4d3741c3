/**
 * Remote media, when a server enables it: fetched into a private temp file that `release` deletes, with
 * redirects refused (a redirect is how an allowed URL reaches an internal one), the size capped while streaming,
 * and loopback, link-local and private hosts refused unless the allow-list names them. The test server is on
 * loopback, so the sources that fetch from it allow-list 127.0.0.1.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
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
    if (request.url === '/playlist.mp4') return void response.writeHead(200, { 'content-type': 'video/mp4' }).end('#EXTM3U\n/etc/passwd\n');
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

const source = (allow: string[] = ['127.0.0.1']) =>
  new MediaSource({ maxMediaBytes: 100_000, allowRemoteMedia: true, remoteMediaAllowedAddresses: allow, tmpDir: mkdtempSync(join(tmpdir(), 'bvllm-media-')) });

async function refusal(url: string, allow?: string[]): Promise<ApiError> {
  const error = await source(allow).open(url, 'url').catch((e: unknown) => e);
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

describe('remote media from private addresses', () => {
  it('refuses loopback, private and link-local literals, and names that resolve to loopback', async () => {
    const port = new URL(base).port;
    for (const host of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '[::1]', '[fe80::1]', '[::ffff:127.0.0.1]', '0.0.0.0', 'localhost'])
      expect(await refusal(`http://${host}:${port}/dot.png`, []), host).toMatchObject({ status: 403, code: 'remote_media_forbidden_address' });
  });

  it('fetches from a private address only when the allow-list names it (an address or a CIDR block)', async () => {
    expect(await refusal(`${base}/dot.png`, ['10.0.0.0/8'])).toMatchObject({ code: 'remote_media_forbidden_address' });
    const file = await source(['127.0.0.0/8', '::1']).open(`http://localhost:${new URL(base).port}/dot.png`, 'url');
    expect(readFileSync(file.path).equals(png())).toBe(true);
    await file.release();
  });

  it('refuses a fetched playlist as unsupported media, and deletes it', async () => {
    const tmpDir = mkdtempSync(join(tmpdir(), 'bvllm-media-'));
    const media = new MediaSource({ maxMediaBytes: 100_000, allowRemoteMedia: true, remoteMediaAllowedAddresses: ['127.0.0.1'], tmpDir });
    expect(await media.open(`${base}/playlist.mp4`, 'url').catch((e: unknown) => e)).toMatchObject({ status: 400, code: 'unsupported_media_type' });
    expect(readdirSync(tmpDir)).toEqual([]);
  });
});
