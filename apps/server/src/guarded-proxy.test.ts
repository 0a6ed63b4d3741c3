/**
 * The address-checking proxy that live streams' ffmpeg goes through (issue #22: HLS segment hosts and DNS
 * rebinding). 127.0.0.1 is allow-listed; 127.0.0.2 is loopback too (Linux routes all of 127/8 locally) but is not.
 */
import { createServer, request } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuardedProxy } from './guarded-proxy.js';
import { RemoteAddressPolicy } from './remote-address.js';

const seen: string[] = [];
const origins: { close(): void; closeAllConnections?: () => void }[] = [];
let proxy: GuardedProxy;
const refused: string[] = [];
const ports: Record<string, number> = {};

async function origin(host: string): Promise<number> {
  const server = createServer((req, res) => {
    seen.push(`${host} ${req.method} ${req.url} host=${req.headers.host} proxy-connection=${req.headers['proxy-connection'] ?? '-'}`);
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello from ${host}`);
  });
  origins.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as { port: number }).port;
}

/** A raw TCP service (what a CONNECT tunnel reaches): answers the first bytes it gets, reversed. */
async function echo(host: string): Promise<number> {
  const server = createTcpServer((socket) => socket.once('data', (d) => socket.end([...d.toString()].reverse().join(''))));
  origins.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as { port: number }).port;
}

beforeAll(async () => {
  ports.allowed = await origin('127.0.0.1');
  ports.refused = await origin('127.0.0.2');
  ports.echo = await echo('127.0.0.1');
  ports.echoRefused = await echo('127.0.0.2');
  proxy = await GuardedProxy.start(new RemoteAddressPolicy(['127.0.0.1']), (host) => refused.push(host));
});
afterAll(async () => {
  await proxy.close();
  for (const s of origins) {
    s.closeAllConnections?.();
    s.close();
  }
});

/** GET `url` through the proxy, as ffmpeg's http protocol asks a proxy (absolute URL in the request line). */
function viaProxy(url: string): Promise<{ status: number; body: string }> {
  const { port } = new URL(proxy.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: url, headers: { host: new URL(url).host, 'proxy-connection': 'keep-alive' } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** CONNECT `target` through the proxy and send PING: the proxy's status line and what came back through the tunnel. */
function tunnel(target: string): Promise<string> {
  const { port } = new URL(proxy.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    let got = '';
    socket.on('data', (d) => {
      got += d.toString();
      if (got.includes('200 Connection Established\r\n\r\n') && !got.includes('PING')) socket.write('PING');
    });
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
  });
}

describe('GuardedProxy', () => {
  it('forwards plain HTTP to a permitted host, with the Host header kept and hop-by-hop headers dropped', async () => {
    const reply = await viaProxy(`http://127.0.0.1:${ports.allowed}/live/seg1.ts?x=1`);
    expect(reply).toEqual({ status: 200, body: 'hello from 127.0.0.1' });
    expect(seen.at(-1)).toBe(`127.0.0.1 GET /live/seg1.ts?x=1 host=127.0.0.1:${ports.allowed} proxy-connection=-`);
  });

  it('refuses a host outside the allow-list with 403, and never connects to it', async () => {
    const before = seen.length;
    expect((await viaProxy(`http://127.0.0.2:${ports.refused}/seg.ts`)).status).toBe(403);
    expect(seen.length).toBe(before);
    expect(refused.at(-1)).toBe('127.0.0.2');
  });

  it('checks a name by the addresses it resolves to, and connects to the one checked', async () => {
    const strict = await GuardedProxy.start(new RemoteAddressPolicy([]), (host) => refused.push(host));
    try {
      const { port } = new URL(strict.url);
      const status = await new Promise<number>((resolve) => request({ host: '127.0.0.1', port, path: `http://localhost:${ports.allowed}/seg.ts` }, (res) => resolve(res.statusCode!)).end());
      expect(status).toBe(403);
      expect(refused.at(-1)).toBe('localhost');
    } finally {
      await strict.close();
    }
    const before = seen.length;
    // Allow-listed 127.0.0.1 is what localhost resolves to here: forwarded, with the name as the Host.
    expect((await viaProxy(`http://localhost:${ports.allowed}/a.ts`)).status).toBe(200);
    expect(seen.slice(before)).toEqual([`127.0.0.1 GET /a.ts host=localhost:${ports.allowed} proxy-connection=-`]);
  });

  it('tunnels CONNECT (HTTPS) to a permitted host and refuses the others', async () => {
    const ok = await tunnel(`127.0.0.1:${ports.echo}`);
    expect(ok).toBe('HTTP/1.1 200 Connection Established\r\n\r\nGNIP');
    expect(await tunnel(`127.0.0.2:${ports.echoRefused}`)).toBe('HTTP/1.1 403 Forbidden\r\n\r\n');
  });

  it('answers 400 to a request that is not for an absolute http:// URL', async () => {
    const { port } = new URL(proxy.url);
    const status = await new Promise<number>((resolve) => request({ host: '127.0.0.1', port, path: '/relative' }, (res) => resolve(res.statusCode!)).end());
    expect(status).toBe(400);
  });
});
