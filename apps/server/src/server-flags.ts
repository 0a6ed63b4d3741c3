/**
 * The server's command-line flags, one table for both start commands (`node dist/main.js` and `bvllm serve`), so
 * they take the same flags (issue #20 item 6): each flag's help line and how it sets the `ServerConfigInput`.
 */
import { parseArgs } from 'node:util';
import { BvllmError } from '@bvllm/core';
import type { ServerConfigInput } from './server-config.js';

const MiB = 1024 * 1024;

type Raw = string | boolean | undefined;

interface Flag {
  name: string;
  /** `--name VALUE` in the help text; absent for a switch. */
  value?: string;
  help: string;
  /** The config field it sets, and how. */
  set?: (raw: Raw) => Partial<ServerConfigInput>;
}

const number = (name: string, raw: Raw, scale = 1) => {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new BvllmError('INVALID_ARGUMENT', `--${name}: expected a number, got "${String(raw)}"`);
  return Math.round(n * scale);
};
const list = (raw: Raw) => (raw === undefined ? undefined : String(raw).split(',').map((s) => s.trim()).filter(Boolean));
const numeric = (name: string, key: keyof ServerConfigInput, scale = 1) => (raw: Raw) => ({ [key]: number(name, raw, scale) });

const FLAGS: Flag[] = [
  { name: 'model', value: 'DIR', help: 'B-VLLM model folder (default: the shipped bvllm-tiny)' },
  { name: 'media-root', value: 'DIR', help: 'folder file:// media URLs may point into (default: none, data: URLs only)', set: (raw) => ({ mediaRoot: raw as string }) },
  { name: 'host', value: 'H', help: 'interface to bind (default 127.0.0.1)', set: (raw) => ({ host: raw as string }) },
  { name: 'port', value: 'N', help: 'TCP port, 0 for any free one (default 8000)', set: numeric('port', 'port') },
  { name: 'cache-dir', value: 'DIR', help: 'feature cache folder (default: a temp folder)', set: (raw) => ({ cacheDir: raw as string }) },
  { name: 'max-queue', value: 'N', help: 'generations that may wait (default 8)', set: numeric('max-queue', 'maxQueue') },
  { name: 'max-tokens', value: 'N', help: 'largest max_tokens (default 512)', set: numeric('max-tokens', 'maxTokens') },
  { name: 'max-media-mb', value: 'N', help: 'largest media file (default 40)', set: numeric('max-media-mb', 'maxMediaBytes', MiB) },
  { name: 'max-duration-sec', value: 'N', help: 'longest video (default 600)', set: numeric('max-duration-sec', 'maxDurationSec') },
  { name: 'max-frames', value: 'N', help: "most sampled frames per video (default 2 x max-duration-sec x the model's fps)", set: numeric('max-frames', 'maxFrames') },
  { name: 'max-pixels', value: 'N', help: 'most pixels per frame, checked from the header before decoding (default 16777216 = 4096^2)', set: numeric('max-pixels', 'maxPixels') },
  { name: 'max-connections', value: 'N', help: 'open TCP connections (default 256)', set: numeric('max-connections', 'maxConnections') },
  { name: 'max-inflight-mb', value: 'N', help: 'request-body MiB admitted at once, all requests together (default 2 x body-limit-mb)', set: numeric('max-inflight-mb', 'maxInflightBodyBytes', MiB) },
  { name: 'feature-cache-mb', value: 'N', help: 'feature cache size, least recently used entries evicted (default 2048)', set: numeric('feature-cache-mb', 'featureCacheBytes', MiB) },
  // The environment keeps the key out of `ps` output.
  { name: 'api-key', value: 'KEY', help: 'require "Authorization: Bearer KEY" on /v1/* (also BVLLM_API_KEY)', set: (raw) => ({ apiKey: (raw as string | undefined) ?? (process.env.BVLLM_API_KEY || undefined) }) },
  { name: 'allowed-hosts', value: 'L', help: 'comma-separated Host names answered (default: loopback names when bound to loopback, else any; * for any)', set: (raw) => ({ allowedHosts: list(raw) }) },
  { name: 'drain-sec', value: 'N', help: 'on SIGTERM, how long in-flight requests may finish before they are cut (default 30)', set: numeric('drain-sec', 'shutdownGraceMs', 1000) },
  { name: 'body-limit-mb', value: 'N', help: 'largest request body (default 64)', set: numeric('body-limit-mb', 'bodyLimitBytes', MiB) },
  { name: 'timeout-sec', value: 'N', help: 'per-request time limit (default 120)', set: numeric('timeout-sec', 'requestTimeoutMs', 1000) },
  { name: 'allow-remote-media', help: 'fetch http(s) media URLs (off by default: SSRF)', set: (raw) => ({ allowRemoteMedia: raw as boolean | undefined }) },
  { name: 'remote-media-allow', value: 'L', help: 'comma-separated private IPs or CIDR blocks remote media may come from (default none)', set: (raw) => ({ remoteMediaAllowedAddresses: list(raw) }) },
  { name: 'max-prompt-chars', value: 'N', help: 'most characters of text per request, checked before tokenizing (default 131072)', set: numeric('max-prompt-chars', 'maxPromptChars') },
  { name: 'max-streams', value: 'N', help: 'live streams open at once, POST /v1/streams (default 4)', set: numeric('max-streams', 'maxStreams') },
  { name: 'max-stream-window-sec', value: 'N', help: 'longest rolling window a stream may keep (default 3600)', set: numeric('max-stream-window-sec', 'maxStreamWindowSec') },
  { name: 'max-stream-fps', value: 'N', help: 'highest sampling rate a stream may ask for (default 4)', set: numeric('max-stream-fps', 'maxStreamFps') },
  { name: 'stream-cpu-share', value: 'F', help: 'share of the wall clock each stream may spend encoding, 0-1 (default 0.5)', set: (raw) => ({ streamCpuShare: raw === undefined ? undefined : Number(raw) }) },
  { name: 'log', help: 'JSON request logs on stdout' },
];

/** The flags' help lines, `  --name VALUE  help`, aligned. */
export const SERVER_FLAGS_HELP = FLAGS.map((f) => `  ${`--${f.name}${f.value ? ` ${f.value}` : ''}`.padEnd(26)} ${f.help}`).join('\n');

export interface ServerFlags {
  /** `--model`: the model folder, when given. */
  model?: string;
  /** `--log`. */
  log: boolean;
  help: boolean;
  config: ServerConfigInput;
}

/** Parses `args` (no program name); throws a typed error naming an unknown flag or a bad number. */
export function parseServerFlags(args: readonly string[]): ServerFlags {
  let values: Record<string, Raw>;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        ...Object.fromEntries(FLAGS.map((f) => [f.name, { type: f.value ? ('string' as const) : ('boolean' as const) }])),
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new BvllmError('INVALID_ARGUMENT', error instanceof Error ? error.message : String(error));
  }
  const config = Object.assign({}, ...FLAGS.map((f) => f.set?.(values[f.name]) ?? {})) as Record<string, unknown>;
  for (const key of Object.keys(config)) if (config[key] === undefined) delete config[key];
  return { model: values.model as string | undefined, log: values.log === true, help: values.help === true, config: config as ServerConfigInput };
}
