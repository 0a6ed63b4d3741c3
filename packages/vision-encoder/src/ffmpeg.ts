/**
 * Running ffmpeg: which binary, and a child-process wrapper that can never hang or buffer without bound. Every run
 * has a wall-clock timeout and honours an AbortSignal by killing the child; stderr is kept only as a bounded tail.
 */
import { spawn } from 'node:child_process';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { AbortedError } from '@bvllm/core';

/** The ffmpeg binary: `BVLLM_FFMPEG` if set, else the static build shipped by `@ffmpeg-installer/ffmpeg`. */
export function ffmpegPath(): string {
  return process.env.BVLLM_FFMPEG || (ffmpegInstaller as { path: string }).path;
}

/** Only the tail of stderr is kept; ffmpeg can print a warning per frame on a broken stream. */
const STDERR_TAIL_BYTES = 16 * 1024;

export interface FfmpegRun {
  /** Exit code, or null when killed (by timeout, abort or `stop`). */
  code: number | null;
  stderr: string;
  timedOut: boolean;
  /** True when `onStdout` asked to stop early: the child was killed on purpose. */
  stopped: boolean;
  /** Set when the binary itself could not be started. */
  spawnError?: Error;
}

export interface FfmpegOptions {
  timeoutMs: number;
  /** Kill the child when stdout has been silent this long: a stalled decoder must not hold the caller forever. */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
  /** Receives stdout chunks; returning `'stop'` kills the child because the caller has all it needs. */
  onStdout?: (chunk: Buffer) => 'stop' | void;
}

/** Runs ffmpeg with `args`; resolves when the child exits (never rejects except on abort). */
export function runFfmpeg(args: readonly string[], options: FfmpegOptions): Promise<FfmpegRun> {
  if (options.signal?.aborted) return Promise.reject(new AbortedError('video decoding'));
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath(), ['-hide_banner', '-nostdin', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let timedOut = false;
    let stopped = false;
    let aborted = false;
    let spawnError: Error | undefined;
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, options.timeoutMs);
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      if (options.idleTimeoutMs === undefined) return;
      clearTimeout(idle);
      idle = setTimeout(() => {
        timedOut = true;
        kill();
      }, options.idleTimeoutMs);
    };
    armIdle();
    const onAbort = () => {
      aborted = true;
      kill();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      if (stderr.length > 2 * STDERR_TAIL_BYTES) stderr = stderr.slice(-STDERR_TAIL_BYTES);
    });
    child.stdout.on('data', (chunk: Buffer) => {
      armIdle();
      if (stopped || !options.onStdout) return;
      if (options.onStdout(chunk) === 'stop') {
        stopped = true;
        kill();
      }
    });
    child.on('error', (error) => {
      spawnError = error;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(idle);
      options.signal?.removeEventListener('abort', onAbort);
      if (aborted) reject(new AbortedError('video decoding'));
      else resolve({ code, stderr: stderr.slice(-STDERR_TAIL_BYTES), timedOut, stopped, spawnError });
    });
  });
}
