/**
 * Turns a media URL from a request into a file the vision tower can read. Three sources, each guarded:
 * - `data:` URLs are decoded to a private temp file, after checking the decoded size;
 * - `file://` paths must resolve, symlinks followed (realpath), inside the configured media root;
 * - `http(s)://` URLs are refused unless remote media is enabled (a server that fetches whatever URL it is given
 *   can be pointed at internal services: SSRF). When enabled, redirects are refused, the size is capped, and
 *   loopback, link-local and private addresses are refused unless the allow-list names them.
 * Whatever the source, the file must then be one of the containers ffmpeg may open (`detectMediaFormat`): a
 * playlist or concat list would make ffmpeg read the files it names, media root or not.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { realpath, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BvllmError } from '@bvllm/core';
import { detectMediaFormat, type UnsupportedMediaError } from '@bvllm/vision-encoder';
import { ApiError, invalidRequest } from './api-error.js';
import { RefusedAddressError, RemoteAddressPolicy } from './remote-address.js';

/** A media file ready for decoding; `release` deletes it when the server made it. */
export interface MediaFile {
  path: string;
  release(): Promise<void>;
}

export interface MediaSourceOptions {
  /** Already a real path (no symlinks), or absent when only `data:` URLs are allowed. */
  mediaRoot?: string;
  maxMediaBytes: number;
  allowRemoteMedia: boolean;
  /** Private addresses or CIDR blocks remote media may come from anyway (default none). */
  remoteMediaAllowedAddresses?: readonly string[];
  /** Private folder for decoded uploads. */
  tmpDir: string;
}

/** MIME type → the extension the decoder dispatches on (images are one frame, everything else goes through ffmpeg). */
const EXTENSIONS: Record<string, string> = {
  'image/png': '.png',
  'image/jpeg': '.jpg',
  'image/jpg': '.jpg',
  'image/webp': '.webp',
  'image/bmp': '.bmp',
  'image/gif': '.gif',
  'video/mp4': '.mp4',
  'video/webm': '.webm',
  'video/quicktime': '.mov',
  'video/x-matroska': '.mkv',
  'video/x-msvideo': '.avi',
  'video/mpeg': '.mpeg',
  'application/octet-stream': '.bin',
};

const tooLarge = (param: string, bytes: number, limit: number) =>
  new ApiError(413, 'invalid_request_error', `${param}: the media is ${bytes} bytes, over the limit of ${limit} bytes.`, 'media_too_large', param);

/** Inside `root` (both real paths)? `relative` handles the prefix trap (`/media` vs `/media-other`). */
const isInside = (root: string, path: string) => {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

export class MediaSource {
  private readonly addresses: RemoteAddressPolicy;

  constructor(private readonly options: MediaSourceOptions) {
    this.addresses = new RemoteAddressPolicy(options.remoteMediaAllowedAddresses);
  }

  /** Resolves `url` (from request field `param`) to a readable file of an allowed format, or throws an ApiError naming `param`. */
  async open(url: string, param: string, signal?: AbortSignal, decoded?: Buffer): Promise<MediaFile> {
    const file = await this.fetch(url, param, signal, decoded);
    try {
      detectMediaFormat(file.path);
    } catch (error) {
      await file.release();
      if (BvllmError.isInstance(error) && error.code === 'MEDIA_UNSUPPORTED')
        throw invalidRequest(`${param}: ${(error as UnsupportedMediaError).reason}.`, 'unsupported_media_type', param);
      throw error;
    }
    return file;
  }

  private async fetch(url: string, param: string, signal?: AbortSignal, decoded?: Buffer): Promise<MediaFile> {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
    if (scheme === 'data') return this.fromDataUrl(url, param, decoded);
    if (scheme === 'file') return this.fromFileUrl(url, param);
    if (scheme === 'http' || scheme === 'https') {
      if (!this.options.allowRemoteMedia)
        throw new ApiError(403, 'permission_error', `${param}: remote media URLs are disabled on this server; send the media as a data: URL.`, 'remote_media_disabled', param);
      return this.fromRemote(url, param, signal);
    }
    throw invalidRequest(`${param}: unsupported URL scheme "${scheme ?? url.slice(0, 16)}"; use data:, file:// or http(s)://.`, 'invalid_url', param);
  }

  private extension(mime: string, param: string): string {
    const ext = EXTENSIONS[mime.toLowerCase()];
    if (!ext) throw invalidRequest(`${param}: unsupported media type "${mime}".`, 'unsupported_media_type', param);
    return ext;
  }

  private tempPath(ext: string): string {
    return join(this.options.tmpDir, `${randomUUID()}${ext}`);
  }

  /** `decoded`: the payload, when the body parser decoded it off the event loop (`url` is then the header alone). */
  private async fromDataUrl(url: string, param: string, decoded?: Buffer): Promise<MediaFile> {
    const comma = url.indexOf(',');
    const header = comma < 0 ? '' : url.slice(5, comma);
    const [mime, ...flags] = header.split(';');
    if (comma < 0 || !flags.includes('base64')) throw invalidRequest(`${param}: a data: URL must be base64 ("data:<type>;base64,<bytes>").`, 'invalid_url', param);
    const ext = this.extension(mime, param);
    const approxBytes = decoded?.length ?? Math.floor(((url.length - comma - 1) * 3) / 4);
    if (approxBytes > this.options.maxMediaBytes + 2) throw tooLarge(param, approxBytes, this.options.maxMediaBytes);
    const bytes = decoded ?? Buffer.from(url.slice(comma + 1), 'base64');
    if (bytes.length === 0) throw invalidRequest(`${param}: the data: URL holds no bytes.`, 'invalid_media', param);
    if (bytes.length > this.options.maxMediaBytes) throw tooLarge(param, bytes.length, this.options.maxMediaBytes);
    const path = this.tempPath(ext);
    await writeFile(path, bytes, { mode: 0o600 });
    return { path, release: () => rm(path, { force: true }) };
  }

  private async fromFileUrl(url: string, param: string): Promise<MediaFile> {
    const root = this.options.mediaRoot;
    if (!root) throw new ApiError(403, 'permission_error', `${param}: file:// URLs are disabled (the server has no media root).`, 'media_root_disabled', param);
    let lexical: string;
    try {
      lexical = resolve(fileURLToPath(url));
    } catch {
      throw invalidRequest(`${param}: not a valid local file URL.`, 'invalid_url', param);
    }
    const outside = () => new ApiError(403, 'permission_error', `${param}: the path is outside the media root.`, 'media_outside_root', param);
    if (!isInside(root, lexical)) throw outside();
    let real: string;
    try {
      real = await realpath(lexical);
    } catch {
      throw invalidRequest(`${param}: no such file under the media root.`, 'media_not_found', param);
    }
    // A symlink inside the root may point anywhere; only the real path counts.
    if (!isInside(root, real)) throw outside();
    const info = await stat(real);
    if (!info.isFile()) throw invalidRequest(`${param}: not a regular file.`, 'invalid_media', param);
    if (info.size > this.options.maxMediaBytes) throw tooLarge(param, info.size, this.options.maxMediaBytes);
    return { path: real, release: async () => {} };
  }

  private async fromRemote(url: string, param: string, signal?: AbortSignal): Promise<MediaFile> {
    const forbidden = () =>
      new ApiError(403, 'permission_error', `${param}: the media URL's host is a loopback, link-local or private address; this server does not fetch from those.`, 'remote_media_forbidden_address', param);
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      throw invalidRequest(`${param}: not a valid URL.`, 'invalid_url', param);
    }
    // IP literals never reach the lookup below, so they are checked here; names are checked as they resolve.
    const literal = target.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(literal) && !this.addresses.permits(literal)) throw forbidden();
    let response: IncomingMessage;
    try {
      response = await new Promise<IncomingMessage>((done, fail) => {
        const request = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, { lookup: this.addresses.lookup, signal }, done);
        request.on('error', fail);
        request.end();
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason ?? error;
      if (error instanceof RefusedAddressError) throw forbidden();
      throw invalidRequest(`${param}: the media URL could not be fetched.`, 'media_not_found', param);
    }
    const status = response.statusCode ?? 0;
    // Redirects are not followed: a redirect is how an allowed URL reaches an internal one.
    if (status < 200 || status >= 300) {
      response.destroy();
      throw invalidRequest(`${param}: fetching the media URL gave HTTP ${status}.`, 'media_not_found', param);
    }
    let ext: string;
    try {
      ext = this.extension((response.headers['content-type'] ?? 'application/octet-stream').split(';')[0].trim(), param);
      const declared = Number(response.headers['content-length'] ?? 0);
      if (declared > this.options.maxMediaBytes) throw tooLarge(param, declared, this.options.maxMediaBytes);
    } catch (error) {
      response.destroy();
      throw error;
    }
    const path = this.tempPath(ext);
    const out = createWriteStream(path, { mode: 0o600 });
    let received = 0;
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (received > this.options.maxMediaBytes) throw tooLarge(param, received, this.options.maxMediaBytes);
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      }
      await new Promise<void>((done, fail) => out.end((error?: Error | null) => (error ? fail(error) : done())));
    } catch (error) {
      response.destroy();
      out.destroy();
      await rm(path, { force: true });
      throw error;
    }
    return { path, release: () => rm(path, { force: true }) };
  }
}
