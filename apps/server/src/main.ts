/**
 * The server's start command: `node dist/main.js --model DIR --media-root DIR --port N`. Opens one inference session,
 * serves until SIGTERM/SIGINT, then drains in-flight requests before exiting.
 */
import { parseArgs } from 'node:util';
import { BvllmError, initBackend } from '@bvllm/core';
import { defaultModelDir } from '@bvllm/bvllm-tiny';
import { InferenceSession } from '@bvllm/pipeline';
import { createServer } from './build-server.js';
import type { ServerConfigInput } from './server-config.js';

const usage = `usage: node dist/main.js [--model DIR] [--media-root DIR] [--host H] [--port N] [options]
  --model DIR             B-VLLM model folder (default: the shipped bvllm-tiny)
  --media-root DIR        folder file:// media URLs may point into (default: none, data: URLs only)
  --host H                interface to bind (default 127.0.0.1)
  --port N                TCP port, 0 for any free one (default 8000)
  --cache-dir DIR         feature cache folder (default: a temp folder)
  --max-queue N           generations that may wait (default 8)
  --max-tokens N          largest max_tokens (default 512)
  --max-media-mb N        largest media file (default 40)
  --max-duration-sec N    longest video (default 600)
  --max-frames N          most sampled frames per video (default 2 x max-duration-sec x the model's fps)
  --max-pixels N          most pixels per frame, checked from the header before decoding (default 16777216 = 4096^2)
  --max-connections N     open TCP connections (default 256)
  --max-inflight-mb N     request-body MiB admitted at once, all requests together (default 2 x body-limit-mb)
  --feature-cache-mb N    feature cache size, least recently used entries evicted (default 2048)
  --api-key KEY           require "Authorization: Bearer KEY" on /v1/* (also BVLLM_API_KEY)
  --allowed-hosts L       comma-separated Host names answered (default: loopback names when bound to loopback, else any; * for any)
  --drain-sec N           on SIGTERM, how long in-flight requests may finish before they are cut (default 30)
  --body-limit-mb N       largest request body (default 64)
  --timeout-sec N         per-request time limit (default 120)
  --allow-remote-media    fetch http(s) media URLs (off by default: SSRF)
  --remote-media-allow L  comma-separated private IPs or CIDR blocks remote media may come from (default none)
  --max-prompt-chars N    most characters of text per request, checked before tokenizing (default 131072)
  --max-streams N         live streams open at once, POST /v1/streams (default 4)
  --max-stream-window-sec N  longest rolling window a stream may keep (default 3600)
  --max-stream-fps N      highest sampling rate a stream may ask for (default 4)
  --stream-cpu-share F    share of the wall clock each stream may spend encoding, 0-1 (default 0.5)
  --log                   JSON request logs on stdout`;

const MiB = 1024 * 1024;

function config(values: Record<string, string | boolean | undefined>): ServerConfigInput {
  const num = (name: string, scale = 1) => {
    const raw = values[name];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new BvllmError('INVALID_ARGUMENT', `--${name}: expected a number, got "${String(raw)}"`);
    return Math.round(n * scale);
  };
  const entries: [keyof ServerConfigInput, unknown][] = [
    ['mediaRoot', values['media-root']],
    ['host', values.host],
    ['port', num('port')],
    ['cacheDir', values['cache-dir']],
    ['maxQueue', num('max-queue')],
    ['maxTokens', num('max-tokens')],
    ['maxMediaBytes', num('max-media-mb', MiB)],
    ['maxDurationSec', num('max-duration-sec')],
    ['maxFrames', num('max-frames')],
    ['bodyLimitBytes', num('body-limit-mb', MiB)],
    ['requestTimeoutMs', num('timeout-sec', 1000)],
    ['allowRemoteMedia', values['allow-remote-media']],
    ['remoteMediaAllowedAddresses', (values['remote-media-allow'] as string | undefined)?.split(',').map((a) => a.trim()).filter(Boolean)],
    ['maxPromptChars', num('max-prompt-chars')],
    ['maxStreams', num('max-streams')],
    ['maxStreamWindowSec', num('max-stream-window-sec')],
    ['maxStreamFps', num('max-stream-fps')],
    ['streamCpuShare', values['stream-cpu-share'] === undefined ? undefined : Number(values['stream-cpu-share'])],
    ['maxPixels', num('max-pixels')],
    ['maxConnections', num('max-connections')],
    ['maxInflightBodyBytes', num('max-inflight-mb', MiB)],
    ['featureCacheBytes', num('feature-cache-mb', MiB)],
    // The environment keeps the key out of `ps` output.
    ['apiKey', values['api-key'] ?? (process.env.BVLLM_API_KEY || undefined)],
    ['allowedHosts', (values['allowed-hosts'] as string | undefined)?.split(',').map((h) => h.trim()).filter(Boolean)],
    ['shutdownGraceMs', num('drain-sec', 1000)],
  ];
  return Object.fromEntries(entries.filter(([, v]) => v !== undefined)) as ServerConfigInput;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      'media-root': { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'cache-dir': { type: 'string' },
      'max-queue': { type: 'string' },
      'max-tokens': { type: 'string' },
      'max-media-mb': { type: 'string' },
      'max-duration-sec': { type: 'string' },
      'max-frames': { type: 'string' },
      'body-limit-mb': { type: 'string' },
      'timeout-sec': { type: 'string' },
      'allow-remote-media': { type: 'boolean' },
      'remote-media-allow': { type: 'string' },
      'max-prompt-chars': { type: 'string' },
      'max-streams': { type: 'string' },
      'max-stream-window-sec': { type: 'string' },
      'max-stream-fps': { type: 'string' },
      'stream-cpu-share': { type: 'string' },
      'max-pixels': { type: 'string' },
      'max-connections': { type: 'string' },
      'max-inflight-mb': { type: 'string' },
      'feature-cache-mb': { type: 'string' },
      'api-key': { type: 'string' },
      'allowed-hosts': { type: 'string' },
      'drain-sec': { type: 'string' },
      log: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  await initBackend();
  // Opens the ONNX modules (exporting them on the first run) before listening, so no request waits for them.
  const session = await InferenceSession.open(values.model ?? defaultModelDir());
  const server = createServer(session, config(values), { logger: values.log ?? false });
  const url = await server.listen();
  process.stdout.write(`bvllm server: ${session.config.name} at ${url}\n`);
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    process.stdout.write(`bvllm server: ${signal}, draining in-flight requests\n`);
    // The drain is bounded: past the grace period (and a little for aborts to unwind) the process exits anyway.
    setTimeout(() => {
      process.stderr.write('bvllm server: drain period over, exiting\n');
      process.exit(1);
    }, server.config.shutdownGraceMs + 5000).unref();
    server
      .close()
      .then(() => session.close())
      .then(() => {
        process.stdout.write('bvllm server: stopped\n');
        process.exit(0);
      })
      .catch((error: unknown) => {
        process.stderr.write(`bvllm server: shutdown failed: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  const code = BvllmError.isInstance(error) ? ` ${error.code}` : '';
  process.stderr.write(`bvllm server: error${code}: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
