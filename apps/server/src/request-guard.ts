/**
 * Who may talk to the server: the Host header check (DNS rebinding: a page on evil.example that re-resolves to
 * 127.0.0.1 sends `Host: evil.example`) and the API key (`Authorization: Bearer`, compared in constant time).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { ApiError } from './api-error.js';

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/** Is `host` (a bind address) loopback? */
const isLoopback = (host: string) => host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));

/** `Host` header → its name, lower-cased, without the port (`[::1]:8000` → `[::1]`). */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

/** The names the server answers to: the configured list, else the loopback names when bound to loopback, else any (undefined). */
export function allowedHostNames(bindHost: string, configured?: readonly string[]): Set<string> | undefined {
  if (configured) return configured.includes('*') ? undefined : new Set(configured.map(hostName));
  if (!isLoopback(bindHost)) return undefined;
  return new Set([...LOOPBACK_NAMES, bindHost.includes(':') ? `[${bindHost}]` : bindHost]);
}

export class RequestGuard {
  private readonly hosts?: Set<string>;
  private readonly keyDigest?: Buffer;

  constructor(options: { bindHost: string; allowedHosts?: readonly string[]; apiKey?: string }) {
    this.hosts = allowedHostNames(options.bindHost, options.allowedHosts);
    this.keyDigest = options.apiKey === undefined ? undefined : createHash('sha256').update(options.apiKey).digest();
  }

  /** Throws 403 `host_not_allowed` for a Host header outside the allow-list (a missing header counts as outside). */
  checkHost(header: string | undefined): void {
    if (!this.hosts) return;
    const name = header === undefined ? '' : hostName(header);
    if (!this.hosts.has(name))
      throw new ApiError(403, 'permission_error', `The Host header "${name.slice(0, 64)}" is not one this server answers to (--allowed-hosts).`, 'host_not_allowed');
  }

  /** Throws 401 `invalid_api_key` unless `authorization` is `Bearer <the key>` (no key configured: anything passes). */
  checkKey(authorization: string | undefined): void {
    if (!this.keyDigest) return;
    const match = /^Bearer\s+(.+)$/i.exec(authorization?.trim() ?? '');
    // Digests have equal length whatever was sent, so the comparison time says nothing about the key.
    const given = createHash('sha256').update(match?.[1] ?? '').digest();
    if (!match || !timingSafeEqual(given, this.keyDigest))
      throw new ApiError(401, 'invalid_request_error', match ? 'Incorrect API key provided.' : 'Missing API key: send "Authorization: Bearer <key>".', 'invalid_api_key');
  }
}
