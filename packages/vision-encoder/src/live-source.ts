/**
 * A live video source (issue #22 item 1): ffmpeg reads RTSP, HTTP(S)/HLS, UDP/MPEG-TS, a named pipe, stdin or a
 * V4L2 device and writes sampled frames as raw rgb24. Frames are sampled in ffmpeg by the stream's own clock
 * (`select` keeps the first frame at least 1/fps after the last one kept, so a stalled source is never padded with
 * duplicates the way the `fps` filter pads), and `showinfo` reports each kept frame's pts and size on stderr: frame
 * n of stdout is frame n of those lines, which is how each frame gets its timestamp without a container parser.
 *
 * Timestamps are seconds of the stream's clock from the first frame. When the source drops, ffmpeg is restarted
 * with exponential backoff; the first frame after a reconnect is placed by the wall-clock time the source was away,
 * and the hole is recorded as a gap. A source that never gives a frame is a {@link StreamOpenError}, one without
 * video a {@link StreamNoVideoError}; a silence past `stallTimeoutMs` marks the source stalled (listeners hear of it,
 * so waiting questions can fail) and restarts ffmpeg.
 *
 * Frames wait in a bounded queue for the consumer. A live source cannot be paused, so when the consumer falls
 * behind the oldest frame is dropped and counted (`overflow: 'drop'`); a replayed pipe or file can be, so
 * `overflow: 'wait'` pauses ffmpeg's stdout instead (accelerated runs, benchmarks).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { InvalidArgumentError } from '@bvllm/core';
import { ffmpegPath } from './ffmpeg.js';
import { StreamNoVideoError, StreamOpenError } from './live-errors.js';

/** Frames larger than this are scaled down by ffmpeg to fit (as files are, `frame-stream.ts`): 1920 × 1088. */
export const LIVE_MAX_PIXELS = 1920 * 1088;
const STDERR_TAIL = 16 * 1024;
/** Frames this much closer than 1/fps still count as one period apart (a 29.97 fps source at 1 fps). */
const PERIOD_TOLERANCE = 0.98;

/** One sampled frame: interleaved RGB uint8, `height × width × 3` bytes. */
export interface LiveFrame {
  rgb: Uint8Array;
  width: number;
  height: number;
  /** Seconds of the stream's clock since its first frame (gaps included). */
  timestampSec: number;
  /** 0, 1, 2, … over the source's whole life (reconnects included). */
  sequence: number;
}

/** A stretch of stream time with no frames because the source was away. */
export interface StreamGap {
  fromSec: number;
  toSec: number;
}

export type LiveSourceState = 'opening' | 'live' | 'stalled' | 'reconnecting' | 'ended' | 'failed' | 'closed';

export type LiveSourceEvent =
  | { type: 'open'; connection: number }
  | { type: 'gap'; gap: StreamGap }
  | { type: 'stalled'; silentMs: number }
  | { type: 'reconnecting'; attempt: number; delayMs: number }
  | { type: 'ended' }
  | { type: 'failed'; error: Error };

export interface LiveSourceOptions {
  /** Frames kept per second of stream time. Default 1 (spec §3). */
  fps?: number;
  /** A connection that gives no frame this long counts as a failed attempt. Default 10 s. */
  openTimeoutMs?: number;
  /** Failed attempts before a source that never gave a frame is a StreamOpenError. Default 3. */
  openAttempts?: number;
  /** No frame for this long on a running source: stalled (ffmpeg is restarted). Default 10 s. */
  stallTimeoutMs?: number;
  /** Reconnect when the source drops (EOF, error, stall). Default true; stdin and regular files end instead. */
  reconnect?: boolean;
  /** First backoff delay; doubles per consecutive failure up to `maxBackoffMs`. Default 500 ms. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Consecutive failed reconnects before the source is failed. Default unlimited. */
  maxReconnects?: number;
  /** Frames waiting for the consumer. Default 8. */
  maxQueuedFrames?: number;
  /** What to do when the queue is full. Default `drop` (the oldest frame). */
  overflow?: 'drop' | 'wait';
  /** For `-` / `pipe:0`: the bytes ffmpeg reads. Default `process.stdin`. */
  stdin?: Readable;
  /** Read a file input at its native rate (ffmpeg `-re`), as a live source would deliver it. */
  realtime?: boolean;
  /** The demuxer (`-f`), when it must not be guessed from the bytes (a server's named pipe: `mpegts`). */
  format?: string;
  /**
   * The protocols ffmpeg may open (`-protocol_whitelist`), so a playlist cannot reach beyond them. Default: the
   * source scheme's own family for network sources (`http(s)` → http, https, tcp, tls, crypto; `rtsp` → rtsp, rtp,
   * udp, tcp, tls, srtp; …), unrestricted for files, pipes and devices.
   */
  protocols?: readonly string[];
  /**
   * Runs before every (re)connect; throwing refuses the source (e.g. the server's remote-address guard). A URL it
   * returns is what ffmpeg opens this time: the server returns the source with its host replaced by the address
   * it checked, so ffmpeg's own lookup cannot be answered differently (DNS rebinding).
   */
  checkSource?: (url: URL) => Promise<URL | void>;
  /**
   * For `http(s)://` sources: an HTTP proxy every request of ffmpeg's goes through (redirects and an HLS
   * playlist's segments included), e.g. the server's address-checking proxy. ffmpeg's `no_proxy` environment is
   * cleared so that no host bypasses it.
   */
  httpProxy?: string;
  onEvent?: (event: LiveSourceEvent) => void;
}

export interface LiveSourceStatus {
  state: LiveSourceState;
  framesSeen: number;
  framesDropped: number;
  /** Connections that delivered at least one frame. */
  connections: number;
  gaps: readonly StreamGap[];
  /** Timestamp of the last frame, or undefined before the first. */
  lastTimestampSec?: number;
}

type InputKind = 'stdin' | 'v4l2' | 'network' | 'file';

/** Each network scheme's protocol family: what its streams (and an HLS playlist's segments) may be read over. */
const PROTOCOLS: Record<string, string[]> = {
  http: ['http', 'https', 'tcp', 'tls', 'crypto'],
  https: ['http', 'https', 'tcp', 'tls', 'crypto'],
  rtsp: ['rtsp', 'rtsps', 'rtp', 'udp', 'tcp', 'tls', 'srtp'],
  rtsps: ['rtsp', 'rtsps', 'rtp', 'udp', 'tcp', 'tls', 'srtp'],
  udp: ['udp', 'rtp'],
  rtp: ['rtp', 'udp'],
  srt: ['srt'],
  tcp: ['tcp'],
};

/** How ffmpeg opens `source`, and whether it is a URL the caller's guard should see. */
function inputArgs(source: string, realtime: boolean, format?: string, protocols?: readonly string[], httpProxy?: string): { kind: InputKind; args: string[]; url?: URL } {
  const opened = inputKind(source, realtime);
  const scheme = opened.url?.protocol.replace(/:$/, '');
  const proxied = httpProxy !== undefined && (scheme === 'http' || scheme === 'https');
  // Through a proxy, HTTPS is a CONNECT tunnel: ffmpeg's `httpproxy` protocol.
  const allowed = protocols ?? (scheme ? [...(PROTOCOLS[scheme] ?? []), ...(proxied ? ['httpproxy'] : [])] : undefined);
  const pre = [...(format ? ['-f', format] : []), ...(allowed ? ['-protocol_whitelist', allowed.join(',')] : []), ...(proxied ? ['-http_proxy', httpProxy] : [])];
  // The options go right before `-i`, after `-re` / `-rtsp_transport`.
  const at = opened.args.lastIndexOf('-i');
  return { ...opened, args: [...opened.args.slice(0, at), ...pre, ...opened.args.slice(at)] };
}

function inputKind(source: string, realtime: boolean): { kind: InputKind; args: string[]; url?: URL } {
  if (source === '-' || source === 'pipe:0') return { kind: 'stdin', args: ['-i', 'pipe:0'] };
  const v4l2 = /^v4l2:\/\/(.+)$/.exec(source)?.[1] ?? (/^\/dev\/video\d+$/.test(source) ? source : undefined);
  if (v4l2) return { kind: 'v4l2', args: ['-f', 'v4l2', '-i', v4l2] };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(source)?.[1]?.toLowerCase();
  if (scheme === undefined || scheme === 'file') {
    const path = scheme === 'file' ? decodeURIComponent(new URL(source).pathname) : source;
    return { kind: 'file', args: [...(realtime ? ['-re'] : []), '-i', path] };
  }
  if (!['rtsp', 'rtsps', 'http', 'https', 'udp', 'rtp', 'srt', 'tcp'].includes(scheme)) throw new InvalidArgumentError('source', `unsupported live source scheme "${scheme}"`);
  // RTSP over TCP: UDP transport loses packets (and whole frames) on any busy link.
  const transport = scheme.startsWith('rtsp') ? ['-rtsp_transport', 'tcp'] : [];
  return { kind: 'network', args: [...transport, '-i', source], url: new URL(source) };
}

/** The environment less `no_proxy` / `NO_PROXY`, which would let ffmpeg bypass an explicit `-http_proxy`. */
function withoutNoProxy(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of Object.keys(out)) if (name.toLowerCase() === 'no_proxy') delete out[name];
  return out;
}

/** Bytes from stdout in arrival order, taken out a frame at a time. */
class ByteQueue {
  private chunks: Buffer[] = [];
  length = 0;
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }
  take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const head = this.chunks[0];
      const k = Math.min(head.length, n - filled);
      out.set(head.subarray(0, k), filled);
      filled += k;
      if (k === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(k);
    }
    this.length -= n;
    return out;
  }
  clear(): void {
    this.chunks = [];
    this.length = 0;
  }
}

const SHOWINFO = /\bn:\s*\d+\s+pts:\s*-?\d+\s+pts_time:(-?[\d.eE+-]+)\s.*?\bs:(\d+)x(\d+)/;
const NO_VIDEO = /matches no streams|does not contain any stream|Output file #0 does not contain/;

/** Why one connection ended. */
type Outcome = 'exit' | 'stall' | 'open-timeout' | 'no-video' | 'spawn-error' | 'closed';

/** A live source; frames come by {@link next}. `close()` kills ffmpeg and frees the queue. */
export class LiveSource {
  private readonly fps: number;
  private readonly opts: Required<Omit<LiveSourceOptions, 'stdin' | 'checkSource' | 'onEvent' | 'fps' | 'format' | 'protocols' | 'httpProxy'>>;
  private readonly input: { kind: InputKind; args: string[]; url?: URL };
  private state: LiveSourceState = 'opening';
  private queue: LiveFrame[] = [];
  private waiter?: () => void;
  private fatal?: Error;
  private child?: ChildProcess;
  private framesSeen = 0;
  private framesDropped = 0;
  private connections = 0;
  private readonly gaps: StreamGap[] = [];
  private lastTs?: number;
  private lastFrameAt = 0;
  private sleepTimer?: NodeJS.Timeout;
  private wake?: () => void;
  private readonly done: Promise<void>;
  /** Set once by close(); every path that would change the state checks it first. */
  private closed = false;

  constructor(
    readonly source: string,
    private readonly options: LiveSourceOptions = {},
  ) {
    this.fps = options.fps ?? 1;
    if (!(this.fps > 0 && this.fps <= 60)) throw new InvalidArgumentError('fps', `must be in (0, 60], got ${this.fps}`);
    this.input = inputArgs(source, options.realtime ?? false, options.format, options.protocols, options.httpProxy);
    // Regular files and stdin end at EOF; a named pipe reopens for its next writer.
    const ends = this.input.kind === 'stdin' || (this.input.kind === 'file' && isRegularFile(source));
    this.opts = {
      openTimeoutMs: options.openTimeoutMs ?? 10_000,
      openAttempts: options.openAttempts ?? 3,
      stallTimeoutMs: options.stallTimeoutMs ?? 10_000,
      reconnect: !ends && (options.reconnect ?? true),
      backoffMs: options.backoffMs ?? 500,
      maxBackoffMs: options.maxBackoffMs ?? 10_000,
      maxReconnects: options.maxReconnects ?? Infinity,
      maxQueuedFrames: options.maxQueuedFrames ?? 8,
      overflow: options.overflow ?? 'drop',
      realtime: options.realtime ?? false,
    };
    this.done = this.run();
  }

  status(): LiveSourceStatus {
    return { state: this.state, framesSeen: this.framesSeen, framesDropped: this.framesDropped, connections: this.connections, gaps: [...this.gaps], lastTimestampSec: this.lastTs };
  }

  /**
   * Waits for at least one frame and returns the queued ones (at most `max`, oldest first); `[]` once the source
   * has ended or is closed. Throws the source's fatal error (StreamOpenError, StreamNoVideoError).
   */
  async next(max = Infinity): Promise<LiveFrame[]> {
    for (;;) {
      if (this.queue.length) {
        const frames = this.queue.splice(0, max);
        if (this.opts.overflow === 'wait' && this.queue.length < this.opts.maxQueuedFrames) this.child?.stdout?.resume();
        return frames;
      }
      if (this.fatal) throw this.fatal;
      if (this.state === 'ended' || this.state === 'closed') return [];
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /** Kills ffmpeg, drops queued frames and ends {@link next}; idempotent. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.state = 'closed';
      this.queue = [];
      clearTimeout(this.sleepTimer);
      this.wake?.();
      this.child?.kill('SIGKILL');
      this.notify();
    }
    await this.done;
  }

  private emit(event: LiveSourceEvent): void {
    this.options.onEvent?.(event);
  }

  private notify(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private fail(error: Error): void {
    if (this.closed) return;
    this.fatal = error;
    this.state = 'failed';
    this.emit({ type: 'failed', error });
    this.notify();
  }

  private async run(): Promise<void> {
    let failures = 0;
    let lastReason = '';
    let lastStderr = '';
    for (let attempt = 1; !this.closed; attempt++) {
      let args = this.input.args;
      try {
        const pinned = this.input.url && this.options.checkSource ? await this.options.checkSource(this.input.url) : undefined;
        // The URL is the argument after the last `-i`.
        const at = args.lastIndexOf('-i') + 1;
        if (pinned) args = [...args.slice(0, at), pinned.href, ...args.slice(at + 1)];
      } catch (error) {
        return this.fail(error as Error);
      }
      const { outcome, frames, stderr, spawnError } = await this.connect(args);
      if (this.closed) return;
      lastStderr = stderr;
      if (outcome === 'no-video') return this.fail(new StreamNoVideoError(this.source, stderr));
      if (outcome === 'spawn-error') return this.fail(new StreamOpenError(this.source, `cannot run ffmpeg (${spawnError?.message ?? 'unknown'})`, attempt));
      if (frames > 0) failures = 0;
      else {
        failures++;
        lastReason = outcome === 'open-timeout' ? `no frame within ${this.opts.openTimeoutMs} ms` : 'ffmpeg exited before the first frame';
      }
      if (this.connections === 0 && failures >= this.opts.openAttempts) return this.fail(new StreamOpenError(this.source, lastReason, attempt, lastStderr));
      if (!this.opts.reconnect) {
        if (this.connections === 0) return this.fail(new StreamOpenError(this.source, lastReason, attempt, lastStderr));
        this.state = 'ended';
        this.emit({ type: 'ended' });
        return this.notify();
      }
      if (failures > this.opts.maxReconnects) return this.fail(new StreamOpenError(this.source, `${lastReason} (${failures} reconnects in a row)`, attempt, lastStderr));
      const delayMs = Math.min(this.opts.maxBackoffMs, this.opts.backoffMs * 2 ** Math.max(0, failures - 1));
      if (this.state !== 'stalled') this.state = this.connections === 0 ? 'opening' : 'reconnecting';
      this.emit({ type: 'reconnecting', attempt, delayMs });
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.sleepTimer = setTimeout(resolve, delayMs);
      });
    }
  }

  /** One ffmpeg run on `input` (its arguments up to the URL): resolves when it exits, with why and how many frames it gave. */
  private connect(input: readonly string[]): Promise<{ outcome: Outcome; frames: number; stderr: string; spawnError?: Error }> {
    const chain = [
      `select='isnan(prev_selected_t)+gte(t-prev_selected_t,${(PERIOD_TOLERANCE / this.fps).toFixed(6)})'`,
      `scale=w='if(gt(iw*ih,${LIVE_MAX_PIXELS}),2*trunc(iw*sqrt(${LIVE_MAX_PIXELS}/(iw*ih))/2),iw)':h='if(gt(iw*ih,${LIVE_MAX_PIXELS}),2*trunc(ih*sqrt(${LIVE_MAX_PIXELS}/(iw*ih))/2),ih)':flags=bicubic`,
      'showinfo',
    ].join(',');
    const args = ['-hide_banner', '-nostdin', '-loglevel', 'info', '-probesize', '1000000', '-analyzeduration', '1000000', ...input, '-map', '0:v:0', '-an', '-sn', '-dn', '-vf', chain, '-vsync', '0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];
    const env = this.options.httpProxy === undefined ? process.env : withoutNoProxy(process.env);
    const child = spawn(ffmpegPath(), args, { stdio: [this.input.kind === 'stdin' ? 'pipe' : 'ignore', 'pipe', 'pipe'], env });
    this.child = child;
    if (this.input.kind === 'stdin') {
      const stdin = this.options.stdin ?? process.stdin;
      stdin.pipe(child.stdin!);
      // ffmpeg gone (closed, killed): the writer must not throw EPIPE at the caller.
      child.stdin!.on('error', () => undefined);
      child.once('close', () => stdin.unpipe(child.stdin!));
    }
    const bytes = new ByteQueue();
    const sizes: { ts: number; width: number; height: number }[] = [];
    let stderr = '';
    let line = '';
    let frames = 0;
    let outcome: Outcome = 'exit';
    let base = 0;
    let firstPts: number | undefined;
    const stopWith = (why: Outcome) => {
      outcome = why;
      child.kill('SIGKILL');
    };
    let timer = setTimeout(() => stopWith('open-timeout'), this.opts.openTimeoutMs);
    const armStall = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (this.closed) return;
        this.state = 'stalled';
        this.emit({ type: 'stalled', silentMs: this.opts.stallTimeoutMs });
        stopWith('stall');
      }, this.opts.stallTimeoutMs);
    };
    const deliver = () => {
      while (!this.closed && sizes.length && bytes.length >= sizes[0].width * sizes[0].height * 3) {
        const meta = sizes.shift()!;
        const rgb = bytes.take(meta.width * meta.height * 3);
        if (firstPts === undefined) {
          firstPts = meta.ts;
          // A reconnect: stream time resumes after the wall-clock time the source was away.
          if (this.lastTs !== undefined) {
            base = Math.round((this.lastTs + Math.max(1 / this.fps, (performance.now() - this.lastFrameAt) / 1000)) * 1e6) / 1e6;
            const gap = { fromSec: this.lastTs, toSec: base };
            this.gaps.push(gap);
            this.emit({ type: 'gap', gap });
          }
          this.connections++;
          this.emit({ type: 'open', connection: this.connections });
        }
        // Rounded to the microsecond: pts differences carry float noise (2.9999999999999996 for 3 s).
        let ts = Math.round((base + (meta.ts - firstPts)) * 1e6) / 1e6;
        // A timestamp reset inside one connection (an MPEG-TS discontinuity): re-anchor just after the last frame.
        if (this.lastTs !== undefined && ts <= this.lastTs) {
          base += this.lastTs + 1 / this.fps - ts;
          ts = this.lastTs + 1 / this.fps;
        }
        this.lastTs = ts;
        this.lastFrameAt = performance.now();
        this.state = 'live';
        frames++;
        this.push({ rgb, width: meta.width, height: meta.height, timestampSec: ts, sequence: this.framesSeen++ });
        armStall();
      }
    };
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = line + chunk.toString('utf8');
      const lines = text.split('\n');
      line = lines.pop() ?? '';
      for (const l of lines) {
        const m = SHOWINFO.exec(l);
        if (m) sizes.push({ ts: Number(m[1]), width: Number(m[2]), height: Number(m[3]) });
        else stderr = (stderr + l + '\n').slice(-STDERR_TAIL);
      }
      deliver();
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      bytes.push(chunk);
      deliver();
      if (this.opts.overflow === 'wait' && this.queue.length >= this.opts.maxQueuedFrames) child.stdout!.pause();
    });
    return new Promise((resolve) => {
      let spawnError: Error | undefined;
      child.on('error', (error) => {
        spawnError = error;
        outcome = 'spawn-error';
      });
      child.on('close', () => {
        clearTimeout(timer);
        bytes.clear();
        this.child = undefined;
        if (this.closed) outcome = 'closed';
        else if (frames === 0 && NO_VIDEO.test(stderr)) outcome = 'no-video';
        resolve({ outcome, frames, stderr, spawnError });
      });
    });
  }

  private push(frame: LiveFrame): void {
    this.queue.push(frame);
    if (this.opts.overflow === 'drop' && this.queue.length > this.opts.maxQueuedFrames) {
      this.queue.shift();
      this.framesDropped++;
    }
    this.notify();
  }
}

function isRegularFile(path: string): boolean {
  try {
    return statSync(path.startsWith('file://') ? decodeURIComponent(new URL(path).pathname) : path).isFile();
  } catch {
    return false;
  }
}

/** Opens a live source (see {@link LiveSource}). */
export function openLiveSource(source: string, options: LiveSourceOptions = {}): LiveSource {
  return new LiveSource(source, options);
}

