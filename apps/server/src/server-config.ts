import { z } from 'zod';
import { isAddressOrSubnet } from './remote-address.js';

const MiB = 1024 * 1024;

/**
 * What the server accepts and how much work it takes on. Every limit exists so that one request (or a flood of
 * them) cannot take the process down: the body and media caps bound memory, duration and frame caps bound the
 * vision tower's work, `maxTokens` bounds the decoder's, and `maxQueue` bounds how many generations wait.
 */
export const serverConfigSchema = z
  .object({
    /** Folder that `file://` media URLs must resolve into (after symlinks). Absent: only `data:` URLs are accepted. */
    mediaRoot: z.string().min(1).optional(),
    /** Interface to bind; loopback by default, so exposing the server is a deliberate choice. */
    host: z.string().min(1).default('127.0.0.1'),
    /** TCP port; 0 picks a free one (the start line prints it). */
    port: z.number().int().min(0).max(65535).default(8000),
    /** On-disk feature cache (a follow-up question about the same video never re-encodes it). Default: a temp folder. */
    cacheDir: z.string().min(1).optional(),
    /** Largest request body in bytes; a `data:` video counts at its base64 size (4/3 of the bytes). Default 64 MiB. */
    bodyLimitBytes: z.number().int().positive().default(64 * MiB),
    /** Largest media file in bytes, whatever its source. Default 40 MiB. */
    maxMediaBytes: z.number().int().positive().default(40 * MiB),
    /** Longest video in seconds. Default 600. */
    maxDurationSec: z.number().positive().default(600),
    /** Most sampled frames T one video may yield (1 fps sampling, spec §3). Default 256. */
    maxFrames: z.number().int().positive().default(256),
    /** Upper bound of `max_tokens`; also the default when a request gives none. Default 512. */
    maxTokens: z.number().int().positive().default(512),
    /** Generations that may wait behind the running one; past this a request gets 429 with Retry-After. Default 8. */
    maxQueue: z.number().int().nonnegative().default(8),
    /** Wall-clock limit of one request, queueing included, in ms. Default 120 s. */
    requestTimeoutMs: z.number().int().positive().default(120_000),
    /** How long a shutdown waits for in-flight requests before aborting them, in ms. Default 30 s. */
    shutdownGraceMs: z.number().int().nonnegative().default(30_000),
    /** Fetch http(s) media URLs. Off by default: a server that fetches arbitrary URLs is an SSRF hole. */
    allowRemoteMedia: z.boolean().default(false),
    /**
     * Loopback, link-local and private addresses are refused as remote media hosts (every resolved address is
     * checked); these IP addresses or CIDR blocks (`10.0.0.0/8`, `::1`) are fetched anyway. Default none.
     */
    remoteMediaAllowedAddresses: z.array(z.string().refine(isAddressOrSubnet, 'expected an IP address or CIDR block')).default([]),
    /**
     * Most characters of text in one request, all messages together, checked before anything is tokenized.
     * Tokenizing costs about 2 µs per character on the event loop (a 16 MiB prompt froze /health for 33 s); the
     * default, 128 Ki, is about Qwen2's 32 k-token context at 4 characters per token. Default 131072.
     */
    maxPromptChars: z.number().int().positive().default(128 * 1024),
    /** Width in pixels of the frame thumbnails the web page shows. Default 160. */
    thumbnailWidth: z.number().int().min(16).max(1024).default(160),
  })
  .strict();

export type ServerConfig = z.output<typeof serverConfigSchema>;
export type ServerConfigInput = z.input<typeof serverConfigSchema>;
