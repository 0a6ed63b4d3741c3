/**
 * An HTTP forward proxy on loopback that every HTTP(S) request of a live stream goes through (ffmpeg's
 * `-http_proxy`): the playlist, each HLS segment, each redirect. The server checks a stream's URL when it opens,
 * but ffmpeg then resolves the name again itself (a DNS answer can change in between: rebinding) and fetches
 * whatever segment URLs the playlist names, on any host. Here each request's host is checked against the
 * {@link RemoteAddressPolicy} and the connection is made to the checked address, so neither can reach a
 * loopback, link-local or private address that is not allow-listed. Plain HTTP is forwarded request by request;
 * HTTPS arrives as `CONNECT host:port` and is tunnelled (its TLS stays end to end).
 */
import { request as httpRequest, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RemoteAddressPolicy } from './remote-address.js';

/** Headers that describe one hop, not the request (RFC 9110 §7.6.1), dropped when forwarding. */
const HOP_BY_HOP = ['connection', 'proxy-connection', 'keep-alive', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

export class GuardedProxy {
  private constructor(
    private readonly server: Server,
    readonly url: string,
    /** Tunnels' sockets, which the HTTP server no longer tracks once CONNECT has taken them. */
    private readonly tunnels: Set<Duplex>,
  ) {}

  /** Listens on an ephemeral loopback port; `onRefused` hears each refused host (for the server's log). */
  static async start(policy: RemoteAddressPolicy, onRefused: (host: string) => void = () => undefined): Promise<GuardedProxy> {
    const tunnels = new Set<Duplex>();
    const server = createServer((request, response) => forward(policy, request, response, onRefused));
    server.on('connect', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      tunnels.add(socket);
      socket.on('close', () => tunnels.delete(socket));
      tunnel(policy, request, socket, head, onRefused);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    return new GuardedProxy(server, `http://127.0.0.1:${port}`, tunnels);
  }

  async close(): Promise<void> {
    for (const socket of this.tunnels) socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function forward(policy: RemoteAddressPolicy, request: IncomingMessage, response: ServerResponse, refuse: (host: string) => void): void {
  const target = URL.canParse(request.url ?? '') ? new URL(request.url!) : undefined;
  if (target?.protocol !== 'http:') {
    response.writeHead(400).end('absolute http:// URLs only');
    return;
  }
  policy.resolve(target.hostname).then(
    (address) => {
      const headers: Record<string, string | string[] | undefined> = { ...request.headers, host: target.host };
      for (const name of HOP_BY_HOP) delete headers[name];
      // A connection of its own per request (no agent): nothing is reused across streams or hosts.
      const upstream = httpRequest({ agent: false, host: address, port: target.port || 80, path: `${target.pathname}${target.search}`, method: request.method, headers }, (reply) => {
        const back = { ...reply.headers };
        for (const name of HOP_BY_HOP) delete back[name];
        response.writeHead(reply.statusCode ?? 502, back);
        reply.pipe(response);
      });
      upstream.on('error', () => (response.headersSent ? response.destroy() : response.writeHead(502).end()));
      response.on('close', () => upstream.destroy());
      request.pipe(upstream);
    },
    () => {
      refuse(target.hostname);
      response.writeHead(403).end('refused: a loopback, link-local or private address');
    },
  );
}

function tunnel(policy: RemoteAddressPolicy, request: IncomingMessage, client: Duplex, head: Buffer, refuse: (host: string) => void): void {
  const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(request.url ?? '');
  if (!match) {
    client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    return;
  }
  const [, host, port] = match;
  client.on('error', () => undefined);
  policy.resolve(host).then(
    (address) => {
      const upstream: Socket = connect({ host: address, port: Number(port) }, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
    },
    () => {
      refuse(host);
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
    },
  );
}
