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
    /**
     * Most sampled frames T one video may yield. Default: 2 × `maxDurationSec` × the model's sampling rate (1 fps,
     * spec §3), so every video the duration limit admits passes: the reference samples one frame per
     * ⌊fps / rate⌋ source frames, which gives up to twice the rate for sources just under 2 fps (29.97 fps gives
     * 620 frames in 600 s).
     */
    maxFrames: z.number().int().positive().optional(),
    /**
     * Most pixels of one frame, checked from the header (images) or the container's declared size (videos) before
     * anything is decoded. Default 4096² (16.8 MP: 4K video, 12 MP photos); an 8192² H.264 or a 16000² PNG is refused.
     */
    maxPixels: z.number().int().positive().default(4096 * 4096),
    /** Open TCP connections; more are refused by the socket layer. Default 256. */
    maxConnections: z.number().int().positive().default(256),
    /**
     * Request-body bytes admitted at once, all chat requests together (by Content-Length, or the body limit when
     * none is declared); past it a request gets 429 before its body is read. Default: twice the body limit.
     */
    maxInflightBodyBytes: z.number().int().positive().optional(),
    /** Bytes the on-disk feature cache may hold; the least recently used entries go first. Default 2 GiB. */
    featureCacheBytes: z.number().int().nonnegative().default(2 * 1024 * MiB),
    /** When set, `/v1/*` requests need `Authorization: Bearer <apiKey>` (401 otherwise). */
    apiKey: z.string().min(1).optional(),
    /**
     * Host header names (without port) the server answers; anything else gets 403, so a DNS-rebinding page cannot
     * reach a loopback server under its own name. Default: `localhost`, `127.0.0.1` and `[::1]` when bound to a
     * loopback address, any host otherwise. `*` allows any.
     */
    allowedHosts: z.array(z.string().min(1)).optional(),
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
    /** Live streams open at once (`POST /v1/streams`); past it 429 `too_many_streams`. Default 4. */
    maxStreams: z.number().int().nonnegative().default(4),
    /** Longest rolling window a stream may ask for, in seconds. Default 3600. */
    maxStreamWindowSec: z.number().positive().default(3600),
    /** Highest sampling rate a stream may ask for, frames per second. Default 4. */
    maxStreamFps: z.number().positive().max(60).default(4),
    /**
     * Share of the wall clock each stream may spend encoding, in (0, 1]; a stream that needs more drops frames
     * (counted in its status) instead of starving the answers. Default 0.5.
     */
    streamCpuShare: z.number().positive().max(1).default(0.5),
    /** A stream source that gives no frame this long, three times over, fails (`STREAM_OPEN`). Default 10 s. */
    streamOpenTimeoutMs: z.number().int().positive().default(10_000),
    /** No frame this long on a running stream: stalled, waiting questions get 503 `stream_stalled`. Default 10 s. */
    streamStallTimeoutMs: z.number().int().positive().default(10_000),
    /**
     * A stream that has failed or ended stays listed this long, so a client can read why, then is removed. It no
     * longer counts against `maxStreams` meanwhile. Default 300 s.
     */
    streamRetainEndedMs: z.number().int().nonnegative().default(300_000),
    /** Width in pixels of the frame thumbnails the web page shows. Default 160. */
    thumbnailWidth: z.number().int().min(16).max(1024).default(160),
  })
  .strict();

export type ServerConfig = z.output<typeof serverConfigSchema>;
export type ServerConfigInput = z.input<typeof serverConfigSchema>;
